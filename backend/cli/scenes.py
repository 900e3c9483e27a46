"""`scene-r1 synth` and `scene-r1 info`: make a synthetic room, describe a capture folder."""

from __future__ import annotations

from pathlib import Path

from .common import at_least, option, scene_arguments


def register(commands) -> None:
    from ..data.synth import SynthConfig

    synth = commands.add_parser("synth", help="render a procedural room with exact ground truth into a scene folder")
    synth.add_argument("--seed", type=at_least(0), required=True)
    synth.add_argument("--out", type=Path, required=True)
    option(synth, "--frames", SynthConfig, "frames", "frames rendered")
    option(synth, "--width", SynthConfig, "width", "image width")
    option(synth, "--height", SynthConfig, "height", "image height")
    option(synth, "--fps", SynthConfig, "fps", "frames per second of the video")
    option(synth, "--trajectory", SynthConfig, "trajectory", "camera path", choices=("orbit", "walk"))
    option(synth, "--objects", SynthConfig, "objects", "objects in the room")
    synth.add_argument(
        "--household", action="store_true", help="a household room (mugs, books, chairs...) with a candidate table"
    )
    synth.add_argument("--naming", choices=("meaningful", "generic"), default="meaningful", help="household names")
    synth.set_defaults(run=run_synth)

    info = commands.add_parser("info", help="print what a capture folder holds (format auto-detected)")
    scene_arguments(info)
    info.add_argument("--sample", type=at_least(1), default=8, help="frames decoded to measure the depth range")
    info.set_defaults(run=run_info)


def _room_settings(args) -> dict:
    """The flags both kinds of synthetic room take."""
    names = ("seed", "frames", "width", "height", "fps", "trajectory")
    return {name: getattr(args, name) for name in names}


def run_synth(args) -> int:
    if args.household:
        from ..data.synth.household_scene import HouseholdConfig, write_household

        config = HouseholdConfig(**_room_settings(args), small_objects=args.objects, naming=args.naming)
        gt, what = write_household(config, args.out, progress=True), f" ({config.naming} names, candidates.json)"
    else:
        from ..data.synth import SynthConfig, write_synthetic

        config = SynthConfig(**_room_settings(args), objects=args.objects)
        gt, what = write_synthetic(config, args.out, progress=True), ""
    print(
        f"wrote {args.out}{what}: {config.frames} frames {config.width}x{config.height}, {len(gt['objects'])} "
        f"objects, {len(gt['queries'])} referring expressions, {len(gt['qa'])} questions"
    )
    return 0


def run_info(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ...shared.scene import summarize_scene
    from ..data import open_scene

    scene = open_scene(args.dir, args.format)
    summary = summarize_scene(scene, sample_frames=args.sample)
    table = Table(title=f"{args.dir}", show_header=False)
    for key, value in summary.items():
        table.add_row(key, str(value))
    Console().print(table)
    return 0
