"""What several commands share: options whose defaults come from the settings dataclasses (never
typed twice), the pipeline settings they build, a progress bar per stage, and result printing."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ...shared.results import QueryResult
from ...shared.scene import SceneError


def at_least(minimum: int):
    """An argparse type: an integer >= minimum (a negative count once sliced off the last item)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"takes an integer >= {minimum}, got {text!r}")
        return value

    return parse


def default_of(settings_class, name: str):
    """A settings dataclass's default for one field (default_factory included)."""
    field = settings_class.__dataclass_fields__[name]
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    raise KeyError(f"{settings_class.__name__}.{name} has no default")


def option(parser, flag: str, settings_class, name: str, help: str, **kwargs) -> None:
    """`--flag` for settings_class.name: its default, and its type, read from the dataclass."""
    default = default_of(settings_class, name)
    if isinstance(default, bool):
        parser.add_argument(flag, action="store_true", default=default, help=help)
        return
    kind = kwargs.pop("type", type(default) if isinstance(default, (int, float, str)) else None)
    parser.add_argument(flag, default=default, type=kind, help=f"{help} (default: {default})", **kwargs)


def scene_arguments(parser) -> None:
    parser.add_argument("dir", type=Path, help="a capture folder (format auto-detected)")
    parser.add_argument("--format", default=None, help="force a format: scene-r1, 7scenes, scannet, record3d, ...")


# flag -> PipelineSettings field; the viewer passes the same table on to the backend it starts.
MODEL_FLAGS = {
    "--vlm": "vlm",
    "--tracker": "tracker",
    "--segmenter": "segmenter",
    "--device": "device",
    "--dtype": "dtype",
    "--config": "config",
    "--video-as-images": "video_as_images",
    "--grounding": "grounding",
    "--chooser": "chooser",
}


def model_arguments(parser) -> None:
    """Model options. Their defaults stay None here so that a --config file's values win over
    nothing but an explicit flag; the help shows PipelineSettings' defaults."""
    from ..pipeline.settings import PipelineSettings

    defaults = PipelineSettings()
    parser.add_argument("--vlm", default=None, help=f"Hugging Face id or local folder (default {defaults.vlm})")
    parser.add_argument(
        "--tracker",
        default=None,
        help=f"'auto' (SAM2 if its weights are here, else geometric), a SAM2 id/folder, or 'geometric' "
        f"(default {defaults.tracker})",
    )
    segmenter_argument(parser, default=None)
    parser.add_argument("--device", default=None, help=f"cpu, cuda, cuda:1 ... or auto (default {defaults.device})")
    parser.add_argument("--dtype", default=None, choices=("auto", "float32", "bfloat16", "float16"))
    parser.add_argument("--config", type=Path, default=None, help="a TOML file with a [pipeline] table")
    parser.add_argument(
        "--video-as-images",
        action="store_true",
        default=None,
        help="show the video as frames with their times (models trained so, e.g. scene-r1-nano)",
    )
    parser.add_argument(
        "--grounding",
        default=None,
        choices=("auto", "box", "candidates"),
        help="box: the paper's boxes; candidates: choose among the scene's objects (a capture's own, or 3D "
        f"proposals of a scan); auto: candidates when the scene knows its objects (default {defaults.grounding})",
    )
    parser.add_argument(
        "--chooser",
        default=None,
        help="the model that chooses among candidates: 'auto' (the VLM; with the shipped scene-r1-nano, the shipped "
        f"scene-r1-nano-v2) or an id/folder (default {defaults.chooser})",
    )


def segmenter_argument(parser, default) -> None:
    from ..models.segmenters import SEGMENTERS
    from ..pipeline.settings import PipelineSettings

    parser.add_argument(
        "--segmenter",
        default=default,
        choices=SEGMENTERS,
        help="what segments the prompt and tracks it: auto (SAM2 if its weights are here, else MobileSAM, else "
        f"geometric), sam2, mobile_sam or geometric (default {PipelineSettings().segmenter})",
    )


def parse_point(text: str, flag: str = "--point") -> list[float]:
    """'x,y' (a click on the object) or 'x,y,0' (a click on what is not the object)."""
    try:
        point = [float(v) for v in text.split(",")]
    except ValueError:
        point = []
    if len(point) == 2:
        point.append(1.0)
    if len(point) != 3 or point[2] not in (0.0, 1.0) or not all(abs(v) < 1e7 for v in point):
        raise SceneError(f"{flag} takes x,y (on the object) or x,y,0 (not on it) in pixels, got {text!r}")
    return point


def model_flags(args: argparse.Namespace) -> list[str]:
    """The model options given on this command line, as argv for a backend started on its behalf."""
    argv = []
    for flag, name in MODEL_FLAGS.items():
        value = getattr(args, name, None)
        if value is True:
            argv.append(flag)
        elif value not in (None, False):
            argv += [flag, str(value)]
    return argv


def pipeline_settings(args: argparse.Namespace):
    from ..pipeline.settings import PipelineSettings

    overrides = {name: getattr(args, name, None) for name in MODEL_FLAGS.values() if name != "config"}
    if args.config is not None:
        return PipelineSettings.from_file(args.config, **overrides)
    return PipelineSettings(**{k: v for k, v in overrides.items() if v is not None})


def parse_box(text: str, flag: str = "--box") -> list[float]:
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4 or not all(abs(v) < 1e7 for v in box):
        raise SceneError(f"{flag} takes x1,y1,x2,y2 in pixels, got {text!r}")
    return box


def frame_number(scene, number: int, flag: str = "--frame") -> int:
    """A frame as the user names it: the capture's own frame number (the file's number), refused
    when negative or not in the capture."""
    if number < 0:
        raise SceneError(f"{flag} {number}: frame numbers are not negative")
    numbers = scene.frame_numbers
    if number not in numbers:
        raise SceneError(
            f"{flag} {number}: the capture has no frame {number} (its frames are {numbers[0]}..{numbers[-1]}, "
            f"{len(numbers)} in all)"
        )
    return numbers.index(number)


def run_with_progress(work):
    """Run work(progress) with a rich progress bar per pipeline stage."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description:>9}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=True) as bar:
        tasks = {}

        def progress(stage, done, total):
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=max(total, 1))
            bar.update(tasks[stage], completed=done, total=max(total, 1))

        return work(progress)


def print_result(result: QueryResult) -> None:
    """Notes, each stage's reasoning, and what came out, as people read it."""
    for note in result.notes:
        print(f"note: {note}")
    print(result.reasoning_text())
    if result.mode == "ask":
        print(f"answer: {result.answer}")
        return
    for number, instance in enumerate(result.instances):
        if instance.mask3d is not None:
            box = instance.mask3d.aabb.round(3).tolist()
            print(f"instance {number} ({instance.label}): {len(instance.mask3d.points)} points, 3D box {box}")
        else:
            print(f"instance {number} ({instance.label}): not lifted: {instance.error}")
    if not result.lifted:
        print(f"nothing lifted: {result.failure_reason()}")
