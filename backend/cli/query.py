"""`scene-r1 lift`, `ground`, `ask` (in this process) and `query` (through a running backend)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ...shared.defaults import DEFAULT_ADDRESS, DEFAULT_TIMEOUT_S
from .common import (
    frame_number,
    model_arguments,
    parse_box,
    parse_point,
    pipeline_settings,
    print_result,
    run_with_progress,
    scene_arguments,
    segmenter_argument,
)


def register(commands) -> None:
    _register_lift(commands)
    _register_model_queries(commands)
    _register_query(commands)


def _register_lift(commands) -> None:
    lift = commands.add_parser("lift", help="lift the object in a 2D box (and/or clicks) on one frame into a 3D mask")
    scene_arguments(lift)
    lift.add_argument("--frame", type=int, required=True, help="the capture's frame number (its file's number)")
    lift.add_argument("--box", default=None, help="x1,y1,x2,y2 in that frame's colour pixels")
    lift.add_argument(
        "--point",
        action="append",
        default=[],
        help="a click prompt x,y on the object, or x,y,0 on what is not the object (repeatable)",
    )
    segmenter_argument(lift, default="auto")
    lift.add_argument("--out", type=Path, required=True, help="a folder (created) for result.json and mask.ply")
    lift.add_argument(
        "--fuse",
        action="store_true",
        help="also TSDF-fuse the scene into OUT/scene_mesh.ply and give the mask as its vertex indices",
    )
    lift.add_argument(
        "--view-step",
        type=parse_view_step,
        default=(10.0, 10.0),
        metavar="CM,DEG",
        help="track, vote and fuse a new view each time the camera moves CM centimetres or turns DEG degrees",
    )
    lift.add_argument("--all-frames", action="store_true", help="use every frame (slow on long scans)")
    lift.set_defaults(run=run_lift)


def _register_model_queries(commands) -> None:
    ground = commands.add_parser("ground", help="find the object(s) a sentence means: result.json + mask.ply")
    scene_arguments(ground)
    ground.add_argument("query")
    ground.add_argument("--out", type=Path, required=True)
    ground.add_argument(
        "--all", action="store_true", help="one 3D mask per matching instance (implied by 'all/every/each ...')"
    )
    model_arguments(ground)
    ground.set_defaults(run=run_ground)

    ask = commands.add_parser("ask", help="answer a question about the scene, with reasoning")
    scene_arguments(ask)
    ask.add_argument("question")
    ask.add_argument("--out", type=Path, default=None)
    model_arguments(ask)
    ask.set_defaults(run=run_ask)


def _register_query(commands) -> None:
    query = commands.add_parser("query", help="ask a running backend about a scan (the CLI as a client)")
    scene_arguments(query)
    query.add_argument("text", nargs="?", default="")
    query.add_argument("--connect", default=DEFAULT_ADDRESS)
    query.add_argument("--mode", choices=("ground", "ask", "lift"), default="ground")
    query.add_argument("--all", action="store_true")
    query.add_argument("--frame", type=int, default=0, help="lift: the capture's frame number")
    query.add_argument("--box", default=None, help="lift: x1,y1,x2,y2")
    query.add_argument("--point", action="append", default=[], help="lift: x,y or x,y,0 (repeatable)")
    query.add_argument(
        "--codec",
        choices=("raw", "zlib", "jpeg"),
        default="raw",
        help="upload encoding: raw (loopback), zlib or jpeg colour (remote links)",
    )
    query.add_argument("--curve-keys", type=Path, default=None, help="folder with client.key_secret and server.key")
    query.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds without any word from the backend"
    )
    query.add_argument("--out", type=Path, default=None)
    query.set_defaults(run=run_query)


def parse_view_step(text: str) -> tuple[float, float]:
    try:
        step = tuple(float(v) for v in text.split(","))
    except ValueError:
        step = ()
    if len(step) != 2 or min(step) < 0:
        raise argparse.ArgumentTypeError(f"takes CM,DEG (two numbers >= 0), got {text!r}")
    return step


def run_lift(args) -> int:
    from ...shared.scene import SceneError
    from ..data import open_scene
    from ..geometry.frame_selection import ALL_FRAMES, ViewSettings
    from ..models.segmenters import make_segmenter
    from ..pipeline.results import lift_to_folder

    points = [parse_point(text) for text in args.point]
    if args.box is None and not any(p[2] == 1 for p in points):
        raise SceneError("lift needs --box x1,y1,x2,y2 or at least one --point x,y on the object")
    scene = open_scene(args.dir, args.format)
    frame = frame_number(scene, args.frame)
    views = ALL_FRAMES if args.all_frames else ViewSettings(args.view_step[0] / 100, args.view_step[1])
    notes: list[str] = []
    segmenter = make_segmenter(args.segmenter, "auto", "cpu", "auto", notes)
    box = None if args.box is None else parse_box(args.box)
    written = lift_to_folder(
        scene, frame, box, args.out, fuse=args.fuse, views=views, segmenter=segmenter, points=points, notes=notes
    )
    print(f"segmenter: {segmenter.name}")
    print(
        f"3D mask: {written['point_count']} points, box {written['aabb']}, from {len(written['frames_used'])} of "
        f"{len(scene)} frames; wrote {args.out}/result.json and {args.out}/mask.ply"
    )
    return 0


def run_ground(args) -> int:
    from ...shared.queries import check_query
    from ..api import build_pipeline
    from ..data import open_scene
    from ..pipeline.results import write_result

    check_query("ground", args.query, {})  # the server's own check, before any model loads
    scene = open_scene(args.dir, args.format)
    pipeline = build_pipeline(pipeline_settings(args))
    result = run_with_progress(
        lambda progress: pipeline.ground(scene, args.query, every=args.all or None, progress=progress)
    )
    written = write_result(result, args.out, frame_numbers=scene.frame_numbers)
    print_result(result)
    print(f"wrote {args.out}/result.json" + (f" and {args.out}/mask.ply" if "mask_ply" in written else ""))
    return 0 if result.lifted else 3


def run_ask(args) -> int:
    from ...shared.queries import check_query
    from ..api import build_pipeline
    from ..data import open_scene
    from ..pipeline.results import write_result

    check_query("ask", args.question, {})
    scene = open_scene(args.dir, args.format)
    pipeline = build_pipeline(pipeline_settings(args))
    result = run_with_progress(lambda progress: pipeline.ask(scene, args.question, progress=progress))
    if args.out:
        write_result(result, args.out, frame_numbers=scene.frame_numbers)
    print_result(result)
    return 0


def run_query(args) -> int:
    from ...shared.client import Client, CurveKeys
    from ...shared.scene import SceneError
    from ..data import open_scene
    from ..pipeline.results import write_result

    scene = open_scene(args.dir, args.format)
    options = {"every": True} if args.all else {}
    if args.mode == "lift":
        points = [parse_point(text) for text in args.point]
        if args.box is None and not any(p[2] == 1 for p in points):
            raise SceneError("--mode lift needs --box x1,y1,x2,y2 or a --point x,y (and --frame)")
        options = {"frame": frame_number(scene, args.frame), "box": None if args.box is None else parse_box(args.box)}
        if points:
            options["points"] = points
    curve = CurveKeys.from_folder(args.curve_keys) if args.curve_keys else None
    with Client(args.connect, timeout=args.timeout, curve=curve) as client:

        def work(progress):
            progress("upload", 0, 1)
            scene_hash = client.upload(scene, codec=args.codec)
            progress("upload", 1, 1)
            on_progress = lambda p: progress(p["stage"], p["done"], p["total"])
            return client.query(scene_hash, args.mode, args.text, on_progress=on_progress, **options)

        result = run_with_progress(work)
    print_result(result)
    if args.out:
        write_result(result, args.out, frame_numbers=scene.frame_numbers)
        print(f"wrote {args.out}/result.json")
    return 0
