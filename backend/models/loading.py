"""from_pretrained with the errors a user can act on."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from ...shared.scene import SceneError


def _shipped_model(name: str) -> Path:
    """A model shipped as package data (scene_r1/models/NAME): found the same way in a source
    checkout, an editable install and a wheel."""
    package = __name__.rsplit(".backend", 1)[0]  # scene_r1
    return Path(str(importlib.resources.files(package) / "models" / name))


# Trained by `scene-r1 train-nano`; shipped in the wheel as package data.
SHIPPED_NANO = _shipped_model("scene-r1-nano")
# scene-r1-nano v2: the same architecture trained only to choose among a scene's candidates (and to
# answer with their table); the pipeline chooses with it when it fell back to the shipped nano.
SHIPPED_NANO_CHOOSER = _shipped_model("scene-r1-nano-v2")


def same_folder(model: str, folder: Path) -> bool:
    """Whether a model id/path names `folder` (a relative path or a symlink to it included)."""
    try:
        return Path(model).resolve() == folder.resolve()
    except (OSError, RuntimeError):
        return False


class ModelError(SceneError):
    """A model that cannot be loaded or that answered with nothing usable."""


def torch_dtype(name: str):
    import torch

    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "auto": "auto"}
    if name not in dtypes:
        raise ModelError(f"--dtype must be one of {', '.join(dtypes)}, got {name!r}")
    return dtypes[name]


def load_pretrained(cls, name: str, device: str | None = None, dtype=None, **kwargs):
    """`cls.from_pretrained(name)` from a local folder or the local Hugging Face cache.

    Nothing is downloaded implicitly (set HF_HUB_OFFLINE=0 to allow it): a backend that silently
    pulls 15 GB on the first query is worse than a clear error naming the model.
    """
    import os

    local = Path(name).expanduser()
    if name.startswith((".", "/", "~")) and not local.is_dir():
        raise ModelError(f"model folder {local} does not exist")
    offline = os.environ.get("HF_HUB_OFFLINE", "1") != "0"
    if dtype is not None:
        kwargs["dtype"] = dtype
    try:
        model = cls.from_pretrained(str(local) if local.is_dir() else name, local_files_only=offline, **kwargs)
    except (OSError, ValueError) as error:
        raise ModelError(
            f"cannot load {cls.__name__} from {name!r}: {error}\n"
            f"Fetch it on a machine with internet (`hf download {name} --local-dir DIR`) and pass DIR, "
            "or set HF_HUB_OFFLINE=0 to let this process download it."
        ) from error
    if device is not None and hasattr(model, "to"):
        model = model.to(device)
    return model
