"""`scene-r1`: the command line. Each command is a thin shell over a plain function."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..shared.scene import SceneError


def cmd_synth(args: argparse.Namespace) -> int:
    from .synth import SynthConfig, write_synthetic

    config = SynthConfig(seed=args.seed, frames=args.frames, width=args.width, height=args.height, fps=args.fps, trajectory=args.trajectory, objects=args.objects)
    gt = write_synthetic(config, args.out, progress=True)
    print(f"wrote {args.out}: {config.frames} frames {config.width}x{config.height}, {len(gt['objects'])} objects, {len(gt['queries'])} referring expressions, {len(gt['qa'])} questions")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from .io import open_scene
    from ..shared.scene import summarize_scene

    scene = open_scene(args.dir, args.format)
    summary = summarize_scene(scene, sample_frames=args.sample)
    table = Table(title=f"{args.dir}", show_header=False)
    for key, value in summary.items():
        table.add_row(key, str(value))
    Console().print(table)
    return 0


def cmd_lift(args: argparse.Namespace) -> int:
    from .io import open_scene
    from .lifting import lift_to_folder

    scene = open_scene(args.dir, args.format)
    result = lift_to_folder(scene, args.frame, parse_box(args.box), args.out, fuse=args.fuse)
    print(f"3D mask: {result['point_count']} points, box {result['aabb']}; wrote {args.out}/result.json and {args.out}/mask.ply")
    return 0


def parse_box(text: str) -> list[float]:
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4:
        raise SceneError(f"--box takes x1,y1,x2,y2 in pixels, got {text!r}")
    return box


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what in ("io", "all"):
        from .bench import run_foundation_benchmark

        run_foundation_benchmark(real_dir=args.real, frames=args.frames, width=args.width, height=args.height)
    if args.what in ("lifting", "all"):
        from .bench_lifting import run_lifting_benchmark

        run_lifting_benchmark()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(Path(args.out), real_dir=args.real)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scene-r1", description="Scene-R1: language-driven 3D scene reasoning over RGB-D video.")
    commands = parser.add_subparsers(dest="command", required=True)

    synth = commands.add_parser("synth", help="render a procedural room with exact ground truth into a scene folder")
    synth.add_argument("--seed", type=int, required=True)
    synth.add_argument("--out", type=Path, required=True)
    synth.add_argument("--frames", type=int, default=60)
    synth.add_argument("--width", type=int, default=320)
    synth.add_argument("--height", type=int, default=240)
    synth.add_argument("--fps", type=float, default=4.0)
    synth.add_argument("--trajectory", choices=("orbit", "walk"), default="orbit")
    synth.add_argument("--objects", type=int, default=8)
    synth.set_defaults(run=cmd_synth)

    info = commands.add_parser("info", help="print what a capture folder holds (format auto-detected)")
    info.add_argument("dir", type=Path)
    info.add_argument("--format", default=None, help="force a format: scene-r1, 7scenes, scannet, record3d")
    info.add_argument("--sample", type=int, default=8, help="frames decoded to measure the depth range")
    info.set_defaults(run=cmd_info)

    lift = commands.add_parser("lift", help="lift the object inside a 2D box on one frame into a 3D mask")
    lift.add_argument("dir", type=Path)
    lift.add_argument("--frame", type=int, required=True, help="frame index in the folder's order")
    lift.add_argument("--box", required=True, help="x1,y1,x2,y2 in that frame's colour pixels")
    lift.add_argument("--out", type=Path, required=True)
    lift.add_argument("--format", default=None)
    lift.add_argument("--fuse", action="store_true", help="also TSDF-fuse the scene into OUT/scene_mesh.ply and give the mask as its vertex indices")
    lift.set_defaults(run=cmd_lift)

    bench = commands.add_parser("bench", help="benchmarks, each against a baseline measured in the same run")
    bench.add_argument("what", nargs="?", choices=("io", "lifting", "all"), default="io",
                       help="io: synthetic rendering and reader speed; lifting: 3D mask accuracy vs naive union, and throughput")
    bench.add_argument("--real", type=Path, default=None, help="a real capture folder (default: ../shared/data/redkitchen-7scenes if present)")
    bench.add_argument("--frames", type=int, default=20)
    bench.add_argument("--width", type=int, default=640)
    bench.add_argument("--height", type=int, default=480)
    bench.set_defaults(run=cmd_bench)

    demo = commands.add_parser("demo", help="the main job as it stands: synthesize, read back, summarize, picture")
    demo.add_argument("--out", default="out/demo")
    demo.add_argument("--real", type=Path, default=None)
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except SceneError as error:
        print(f"scene-r1 {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
