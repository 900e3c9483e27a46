"""`scene-r1 view`, `bench` and `demo`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ...shared.scene import SceneError
from .common import model_arguments, model_flags

# name -> (what it measures, the function in benchmarks/ that runs it, the size flags it reads)
BENCHMARKS = {
    "io": (
        "synthetic rendering and reader speed",
        "foundation:run_foundation_benchmark",
        ("frames", "width", "height"),
    ),
    "lifting": ("3D mask accuracy vs naive union, and throughput", "lifting:run_lifting_benchmark", ()),
    "pipeline": ("overhead per query beside model time", "pipeline:run_pipeline_benchmark", ()),
    "transport": ("upload vs raw pyzmq, compression, cached queries", "transport:run_transport_benchmark", ()),
    "scan": (
        "scan.open (read, hash, fuse) vs uploading the same frames; reopen; capped mesh",
        "scan_open:run_scan_benchmark",
        (),
    ),
    "segment": (
        "segmenters side by side on the real kitchen: speed, key frames, box checks",
        "segment:run_segment_benchmark",
        (),
    ),
    "security": (
        "10,000 fuzzed messages at serve and at a broker + worker: deaths, peak RSS, a real query after",
        "security:run_security_benchmark",
        (),
    ),
    "gpu": ("real-size Qwen2.5-VL-7B and SAM2.1 on a CUDA GPU, per stage", "gpu:run_gpu_benchmark", ()),
    "scale": ("a 1000-frame scan: lift + fuse time and memory vs decoding", "scale:run_scale_benchmark", ()),
    "cache": ("a different query on a cached scene vs the first (upload + query)", "cache:run_cache_benchmark", ()),
}
ON_DEMAND = ("gpu", "scale", "cache")  # not in `bench all`: a GPU, a 1000-frame scan, minutes of model time
SIZE_DEFAULTS = {"frames": 20, "width": 640, "height": 480}


def register(commands) -> None:
    view = commands.add_parser("view", help="the Open3D viewer: the scan, queries, results, reasoning, exports")
    view.add_argument("dir", type=Path)
    view.add_argument("--connect", default=None, help="a running backend; default: start a local one")
    view.add_argument("--query", default=None, help="run this query once the scan is shown")
    view.add_argument("--mode", choices=("find", "ask", "box"), default="find")
    view.add_argument("--box", default=None, help="box mode: 'FRAME x1,y1,x2,y2'")
    view.add_argument(
        "--screenshot", type=Path, default=None, help="after the first result: save a screenshot and the exports, quit"
    )
    view.add_argument("--export-dir", type=Path, default=None)
    model_arguments(view)
    view.set_defaults(run=run_view)

    bench = commands.add_parser("bench", help="benchmarks, each against a baseline measured in the same run")
    bench.add_argument(
        "what",
        nargs="?",
        choices=(*BENCHMARKS, "all"),
        default="io",
        help="; ".join(f"{name}: {about}" for name, (about, _, _) in BENCHMARKS.items()),
    )
    bench.add_argument("--real", type=Path, default=None, help="a real capture folder (default: ../shared/data/...)")
    bench.add_argument("--out", type=Path, default=None, help="gpu: also write the figures as JSON here")
    bench.add_argument("--tiny-check", action="store_true", help="gpu: its code with tiny models on the CPU")
    for name, default in SIZE_DEFAULTS.items():
        bench.add_argument(f"--{name}", type=int, default=None, help=f"io only (default {default})")
    bench.set_defaults(run=run_bench)

    demo = commands.add_parser("demo", help="the main job: a room, the backend, a box and a sentence lifted to 3D")
    demo.add_argument("--out", type=Path, default=Path("out/demo"))
    demo.add_argument("--real", type=Path, default=None)
    demo.add_argument("--vlm", default=None, help="the model for language (default: the shipped scene-r1-nano)")
    demo.set_defaults(run=run_demo)


def run_view(args) -> int:
    import os

    os.environ.setdefault("OPEN3D_CPU_RENDERING", "true")  # llvmpipe where there is no GPU
    from ..viewer.app import run_viewer

    auto = {"text": args.query or "", "mode": args.mode, "box": args.box or ""} if (args.query or args.box) else None
    return run_viewer(
        args.dir, args.connect, model_flags(args), screenshot=args.screenshot, auto=auto, export_dir=args.export_dir
    )


def load_benchmark(name: str, target: str):
    """The function behind `bench NAME`; a clear line when the benchmarks or a module they need are missing."""
    import importlib

    module, function = target.split(":")
    try:
        return getattr(importlib.import_module(f"scene_r1.benchmarks.{module}"), function)
    except ModuleNotFoundError as error:
        if (error.name or "").startswith("scene_r1.benchmarks"):  # the benchmarks themselves, not a dependency
            raise SceneError("benchmarks live in the source checkout (benchmarks/), not in the wheel") from None
        raise SceneError(f"bench {name} needs the module {error.name!r}, which is not installed here") from None


def run_bench(args: argparse.Namespace) -> int:
    chosen = [n for n in BENCHMARKS if n not in ON_DEMAND] if args.what == "all" else [args.what]
    for name in chosen:
        _, target, size_flags = BENCHMARKS[name]
        given = {flag: getattr(args, flag) for flag in SIZE_DEFAULTS if getattr(args, flag) is not None}
        ignored = set(given) - set(size_flags)
        if ignored and args.what != "all":
            raise SceneError(f"bench {name} has no --{', --'.join(sorted(ignored))} (only `bench io` takes sizes)")
        run = load_benchmark(name, target)
        sizes = {flag: given.get(flag, SIZE_DEFAULTS[flag]) for flag in size_flags}
        if name in ON_DEMAND:
            options = {"gpu": {"out": args.out, "tiny_check": args.tiny_check}, "scale": {"folder": args.real}}
            return run(**options.get(name, {}))
        run(real_dir=args.real, **sizes) if name in ("io", "segment", "cache") else run(**sizes)
    return 0


def run_demo(args) -> int:
    from ..demo import run_demo as demo

    demo(args.out, real_dir=args.real, vlm=args.vlm)
    return 0
