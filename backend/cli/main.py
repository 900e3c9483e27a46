"""`scene-r1`: the command line. Each command is a thin shell over a plain function."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ...shared.scene import SceneError


def cmd_synth(args: argparse.Namespace) -> int:
    from ..data.synth import SynthConfig, write_synthetic

    if args.household:
        from ..data.synth.household_scene import HouseholdConfig, write_household

        config = HouseholdConfig(
            seed=args.seed,
            frames=args.frames,
            width=args.width,
            height=args.height,
            fps=args.fps,
            trajectory=args.trajectory,
            small_objects=args.objects,
            naming=args.naming,
        )
        gt = write_household(config, args.out, progress=True)
        print(
            f"wrote {args.out} ({config.naming} names): {len(gt['objects'])} objects, candidates.json, "
            f"{len(gt['queries'])} referring expressions, {len(gt['qa'])} questions"
        )
        return 0
    config = SynthConfig(
        seed=args.seed,
        frames=args.frames,
        width=args.width,
        height=args.height,
        fps=args.fps,
        trajectory=args.trajectory,
        objects=args.objects,
    )
    gt = write_synthetic(config, args.out, progress=True)
    print(
        f"wrote {args.out}: {config.frames} frames {config.width}x{config.height}, {len(gt['objects'])} objects, {len(gt['queries'])} referring expressions, {len(gt['qa'])} questions"
    )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
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


def cmd_lift(args: argparse.Namespace) -> int:
    from ..data import open_scene
    from ..pipeline.results import lift_to_folder

    scene = open_scene(args.dir, args.format)
    result = lift_to_folder(scene, args.frame, parse_box(args.box), args.out, fuse=args.fuse)
    print(
        f"3D mask: {result['point_count']} points, box {result['aabb']}; wrote {args.out}/result.json and {args.out}/mask.ply"
    )
    return 0


def parse_box(text: str) -> list[float]:
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4:
        raise SceneError(f"--box takes x1,y1,x2,y2 in pixels, got {text!r}")
    return box


def pipeline_settings(args: argparse.Namespace):
    from ..pipeline.settings import PipelineSettings

    overrides = {
        "vlm": args.vlm,
        "tracker": args.tracker,
        "device": args.device,
        "dtype": args.dtype,
        "video_as_images": getattr(args, "video_as_images", None),
        "grounding": getattr(args, "grounding", None),
    }
    if args.config is not None:
        return PipelineSettings.from_file(args.config, **overrides)
    return PipelineSettings(**{k: v for k, v in overrides.items() if v is not None})


def _run_with_progress(work):
    """Run work(progress) with a rich progress bar per pipeline stage."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description:>9}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(), transient=True
    ) as bar:
        tasks = {}

        def progress(stage, done, total):
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=max(total, 1))
            bar.update(tasks[stage], completed=done, total=max(total, 1))

        return work(progress)


def cmd_ground(args: argparse.Namespace) -> int:
    from ..data import open_scene
    from ..pipeline.pipeline import Pipeline

    scene = open_scene(args.dir, args.format)
    pipeline = Pipeline(pipeline_settings(args))
    result = _run_with_progress(
        lambda progress: pipeline.ground(scene, args.query, every=args.all or None, progress=progress)
    )
    written = result.write(args.out)
    print_stages(written)
    for number, instance in enumerate(written["instances"]):
        if "mask_3d" in instance:
            print(
                f"instance {number} ({instance['label']}): {instance['mask_3d']['point_count']} points, 3D box {instance['mask_3d']['aabb']}"
            )
        else:
            print(f"instance {number} ({instance['label']}): not lifted: {instance.get('error', '')}")
    print(f"wrote {args.out}/result.json" + (f" and {args.out}/mask.ply" if "mask_ply" in written else ""))
    return 0 if "mask_ply" in written else 3


def cmd_ask(args: argparse.Namespace) -> int:
    from ..data import open_scene
    from ..pipeline.pipeline import Pipeline

    scene = open_scene(args.dir, args.format)
    pipeline = Pipeline(pipeline_settings(args))
    result = _run_with_progress(lambda progress: pipeline.ask(scene, args.question, progress=progress))
    written = result.write(args.out) if args.out else result.to_json()
    print_stages(written)
    print(f"answer: {written['answer']}")
    return 0


def print_stages(result: dict) -> None:
    for note in result.get("notes", []):
        print(f"note: {note}")
    for stage, info in result["stages"].items():
        if "reasoning" in info:
            print(f"[{stage}] reasoning: {info['reasoning'][:300]}")
            print(
                f"[{stage}] answer: {info['answer'][:300]}"
                + (" (format-constrained)" if info.get("constrained") else "")
            )
        elif "error" in info:
            print(f"[{stage}] {info['error']}")


def cmd_serve(args: argparse.Namespace) -> int:
    from ..service.server import Server, ServerSettings

    settings = ServerSettings(
        bind=args.bind,
        curve_keys=args.curve_keys,
        broker=args.broker,
        name=args.name or "",
        jobs=args.jobs,
        max_frames=args.max_frames,
        cache_bytes=int(args.cache_gb * (1 << 30)),
        pipeline=pipeline_settings(args),
    )
    server = Server(settings)
    where = f"worker of broker {args.broker}" if args.broker else f"listening on {args.bind}"
    print(
        f"scene-r1 backend {where} ({'CURVE' if args.curve_keys else 'no encryption: loopback only'}); models load on the first query",
        flush=True,
    )
    server.serve()
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from ..service.keys import make_keys

    paths = make_keys(args.dir)
    print(
        f"server: scene-r1 serve --bind tcp://0.0.0.0:5555 --curve-keys {args.dir}   (keeps {paths['server_secret'].name} secret)"
    )
    print(
        f"client: copy {args.dir}/client.key_secret and {args.dir}/server.key to the client, then --curve-keys THAT_DIR"
    )
    print(f"more clients: put their public .key files in {paths['authorized']}")
    return 0


def cmd_broker(args: argparse.Namespace) -> int:
    from ..service.broker import Broker
    from ..service.keys import is_loopback

    for address in (args.frontend, args.backend):
        if not is_loopback(address) and not args.trusted_network:
            raise SceneError(
                f"the broker relays messages as they are; bind {address} only on a trusted network (--trusted-network) "
                "and give clients and workers CURVE keys, or bind 127.0.0.1"
            )
    print(f"scene-r1 broker: clients -> {args.frontend}, workers -> {args.backend}", flush=True)
    Broker(args.frontend, args.backend).serve()
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    import json

    from ...shared.client import Client, CurveKeys, result_instances
    from ..data import open_scene

    scene = open_scene(args.dir, args.format)
    curve = CurveKeys.from_folder(args.curve_keys) if args.curve_keys else None
    with Client(args.connect, timeout=args.timeout, curve=curve) as client:

        def work(progress):
            progress("upload", 0, 1)
            scene_hash = client.upload(scene, codec=args.codec)
            progress("upload", 1, 1)
            options = {"every": True} if args.all else {}
            if args.mode == "lift":
                options = {"frame": args.frame, "box": parse_box(args.box)}
            return client.query(
                scene_hash,
                args.mode,
                args.text,
                on_progress=lambda p: progress(p["stage"], p["done"], p["total"]),
                **options,
            )

        reply = _run_with_progress(work)
    result = reply.payload
    print_stages(result)
    if args.mode == "ask":
        print(f"answer: {result['answer']}")
    for number, instance in enumerate(result_instances(reply)):
        if "points" in instance:
            print(
                f"instance {number} ({instance['label']}): {len(instance['points'])} points, 3D box {instance['mask_3d']['aabb']}"
            )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "result.json").write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
        print(f"wrote {args.out}/result.json")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ..training.records import RecordSettings, task_list
    from ..training.rewards import RewardWeights
    from ..training.train import TrainSettings, train

    try:
        task_list(args.task)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    settings = TrainSettings(
        task=args.task,
        model=args.model,
        data=str(args.data),
        out=str(args.out),
        sft_steps=args.sft_steps,
        grpo_steps=args.steps,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        num_generations=args.generations,
        max_completion_length=args.max_completion_length,
        lora=args.lora,
        use_vllm=args.vllm,
        bf16=args.bf16,
        use_cpu=args.cpu,
        seed=args.seed,
        rewards=RewardWeights(giou=args.giou),
        records=RecordSettings(image_views=args.image_views),
    )
    final = train(settings)
    print(f"trained model: {final} (reward curves: {args.out}/reward_curves.json)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from ..eval.evaluate import evaluate
    from ..pipeline.pipeline import Pipeline

    if args.task == "proposals":
        from ..eval.candidates import proposal_report

        report = proposal_report(args.data, args.out)
        print(report["table"])
        print(f"wrote {args.out}/proposals.json and {args.out}/proposals.md")
        return 0
    with Progress(transient=True) as bar:
        task = bar.add_task(f"eval {args.task}", total=None)
        progress = lambda n: bar.update(task, completed=n)  # noqa: E731
        if args.compare:
            from ..eval.candidates import compare_grounding

            if args.task != "ground":
                raise SceneError("--compare compares the box and candidate grounding paths: use it with --task ground")
            compare_grounding(args.data, pipeline_settings(args), args.out, limit=args.limit, progress=progress)
            print((args.out / "compare.md").read_text(encoding="utf-8"))
            print(f"wrote {args.out}/compare.md, {args.out}/box/ and {args.out}/candidates/")
            return 0
        report = evaluate(args.data, args.task, Pipeline(pipeline_settings(args)), args.out, limit=args.limit, progress=progress)
    print((args.out / "eval.md").read_text(encoding="utf-8"))
    print(f"wrote {args.out}/eval.json and {args.out}/eval.md ({len(report['rows'])} rows)")
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("OPEN3D_CPU_RENDERING", "true")  # llvmpipe where there is no GPU
    from ..viewer.app import run_viewer

    backend_args = []
    for flag, value in (
        ("--vlm", args.vlm),
        ("--tracker", args.tracker),
        ("--device", args.device),
        ("--dtype", args.dtype),
        ("--config", args.config),
    ):
        if value is not None:
            backend_args += [flag, str(value)]
    auto = {"text": args.query or "", "mode": args.mode, "box": args.box or ""} if (args.query or args.box) else None
    return run_viewer(
        args.dir, args.connect, backend_args, screenshot=args.screenshot, auto=auto, export_dir=args.export_dir
    )


def cmd_train_nano(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..training.nano import NanoRecipe, train_nano

    recipe = NanoRecipe()
    if args.quick:  # the recipe's shape in minutes, for checking a machine (not the shipped model)
        recipe = replace(
            recipe,
            train_seeds=(1000, 1004),
            held_out_seeds=(5000, 5002),
            frames=8,
            image_views=2,
            sft_steps=20,
            grpo_steps=2,
        )
    final = train_nano(args.out, recipe)
    print(
        f"scene-r1-nano: {final} (SFT only: {args.out}/sft-final); evaluate with scene-r1 eval --data {args.out}/data/held-out --vlm {final} --video-as-images"
    )
    return 0


def cmd_make_tiny_models(args: argparse.Namespace) -> int:
    from ..models.tiny import make_tiny_models

    paths = make_tiny_models(args.out)
    print(f"tiny random-weight models: --vlm {paths['vlm']} --tracker {paths['tracker']}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.what in ("io", "all"):
        from ...benchmarks.foundation import run_foundation_benchmark

        run_foundation_benchmark(real_dir=args.real, frames=args.frames, width=args.width, height=args.height)
    if args.what in ("lifting", "all"):
        from ...benchmarks.lifting import run_lifting_benchmark

        run_lifting_benchmark()
    if args.what in ("pipeline", "all"):
        from ...benchmarks.pipeline import run_pipeline_benchmark

        run_pipeline_benchmark()
    if args.what in ("transport", "all"):
        from ...benchmarks.transport import run_transport_benchmark

        run_transport_benchmark()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    run_demo(Path(args.out), real_dir=args.real, vlm=args.vlm)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scene-r1", description="Scene-R1: language-driven 3D scene reasoning over RGB-D video."
    )
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
    synth.add_argument(
        "--household", action="store_true", help="a household room (mugs, books, chairs...) with a candidate table"
    )
    synth.add_argument("--naming", choices=("meaningful", "generic"), default="meaningful", help="household names")
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
    lift.add_argument(
        "--fuse",
        action="store_true",
        help="also TSDF-fuse the scene into OUT/scene_mesh.ply and give the mask as its vertex indices",
    )
    lift.set_defaults(run=cmd_lift)

    def model_options(command):
        command.add_argument(
            "--vlm",
            default=None,
            help="Hugging Face id or local folder of the vision-language model (default Qwen/Qwen2.5-VL-7B-Instruct)",
        )
        command.add_argument(
            "--tracker", default=None, help="'auto' (SAM2 if present, else geometric), a SAM2 id/folder, or 'geometric'"
        )
        command.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ...")
        command.add_argument("--dtype", default=None, choices=("auto", "float32", "bfloat16", "float16"))
        command.add_argument(
            "--config", type=Path, default=None, help="a TOML file with a [pipeline] table of the same settings"
        )
        command.add_argument(
            "--video-as-images",
            action="store_true",
            default=None,
            help="show the video as frames with their times (models trained so, e.g. scene-r1-nano)",
        )
        command.add_argument(
            "--grounding",
            default=None,
            choices=("auto", "box", "candidates"),
            help="box: the paper's boxes; candidates: choose among the scene's objects (a capture's own, or 3D "
            "proposals of a scan); auto (default): candidates when the scene knows its objects",
        )
        command.add_argument("--format", default=None)

    ground = commands.add_parser("ground", help="find the object(s) a sentence means: result.json + mask.ply")
    ground.add_argument("dir", type=Path)
    ground.add_argument("query")
    ground.add_argument("--out", type=Path, required=True)
    ground.add_argument(
        "--all", action="store_true", help="one 3D mask per matching instance (implied by 'all/every/each ...')"
    )
    model_options(ground)
    ground.set_defaults(run=cmd_ground)

    ask = commands.add_parser("ask", help="answer a question about the scene, with reasoning")
    ask.add_argument("dir", type=Path)
    ask.add_argument("question")
    ask.add_argument("--out", type=Path, default=None)
    model_options(ask)
    ask.set_defaults(run=cmd_ask)

    serve = commands.add_parser("serve", help="run the backend service (ZeroMQ) for Blender, the viewer and `query`")
    serve.add_argument(
        "--bind", default="tcp://127.0.0.1:5555", help="address to listen on; anything but loopback needs --curve-keys"
    )
    serve.add_argument(
        "--curve-keys",
        type=Path,
        default=None,
        help="folder from `scene-r1 keys` (server.key_secret, authorized_clients/)",
    )
    serve.add_argument(
        "--broker", default=None, help="instead of binding, serve as a worker of `scene-r1 broker` at this address"
    )
    serve.add_argument("--name", default=None, help="worker name shown by the broker")
    serve.add_argument(
        "--jobs", type=int, default=1, help="queries run at once (GPU work); health and cancel never wait"
    )
    serve.add_argument("--max-frames", type=int, default=5000)
    serve.add_argument("--cache-gb", type=float, default=8.0, help="decoded scenes kept in memory")
    model_options(serve)
    serve.set_defaults(run=cmd_serve)

    keys = commands.add_parser("keys", help="make CURVE key pairs for a server and a client")
    keys.add_argument("dir", type=Path)
    keys.set_defaults(run=cmd_keys)

    broker = commands.add_parser("broker", help="put several `serve --broker` workers behind one address")
    broker.add_argument("--frontend", default="tcp://127.0.0.1:5555", help="where clients connect")
    broker.add_argument("--backend", default="tcp://127.0.0.1:5556", help="where workers connect")
    broker.add_argument("--trusted-network", action="store_true", help="allow binding non-loopback addresses")
    broker.set_defaults(run=cmd_broker)

    query = commands.add_parser("query", help="ask a running backend about a scan (the CLI as a client)")
    query.add_argument("dir", type=Path)
    query.add_argument("text", nargs="?", default="")
    query.add_argument("--connect", default="tcp://127.0.0.1:5555")
    query.add_argument("--mode", choices=("ground", "ask", "lift"), default="ground")
    query.add_argument("--all", action="store_true")
    query.add_argument("--frame", type=int, default=0, help="lift: frame index")
    query.add_argument("--box", default="0,0,1,1", help="lift: x1,y1,x2,y2")
    query.add_argument(
        "--codec",
        choices=("raw", "zlib", "jpeg"),
        default="raw",
        help="upload encoding: raw (loopback), zlib or jpeg colour (remote links)",
    )
    query.add_argument("--curve-keys", type=Path, default=None, help="folder with client.key_secret and server.key")
    query.add_argument(
        "--timeout", type=float, default=60.0, help="seconds without any word from the server before giving up"
    )
    query.add_argument("--out", type=Path, default=None)
    query.add_argument("--format", default=None)
    query.set_defaults(run=cmd_query)

    training = commands.add_parser(
        "train", help="GRPO (with an optional SFT warm start) from 2D boxes, spans or answers"
    )
    training.add_argument(
        "--task",
        required=True,
        help="temporal, image, vqa, a comma-separated mix of them, or all (one model on the mix)",
    )
    training.add_argument("--model", required=True, help="Hugging Face id or folder to start from")
    training.add_argument(
        "--data", type=Path, required=True, help="a folder of scene folders with gt.json (scene-r1 synth)"
    )
    training.add_argument("--out", type=Path, required=True)
    training.add_argument("--steps", type=int, default=100, help="GRPO steps")
    training.add_argument("--sft-steps", type=int, default=0, help="supervised warm-start steps before GRPO (0: none)")
    training.add_argument("--lr", type=float, default=1e-5)
    training.add_argument("--batch-size", type=int, default=2, help="prompts per device per step")
    training.add_argument("--generations", type=int, default=4, help="completions per prompt")
    training.add_argument("--max-completion-length", type=int, default=128)
    training.add_argument(
        "--image-views", type=int, default=1, help="image task: frames per query, the best-seen first"
    )
    training.add_argument("--lora", action="store_true")
    training.add_argument("--giou", action="store_true", help="GIoU instead of IoU for the box reward")
    training.add_argument("--vllm", action="store_true", help="generate with vLLM (colocated)")
    training.add_argument("--bf16", action="store_true")
    training.add_argument("--cpu", action="store_true")
    training.add_argument("--seed", type=int, default=0)
    training.set_defaults(run=cmd_train)

    evaluation = commands.add_parser(
        "eval", help="run the pipeline over a dataset and score it: Acc@0.25/0.5, temporal and 2D IoU, VQA exact match"
    )
    evaluation.add_argument(
        "--task",
        choices=("ground", "vqa", "proposals"),
        required=True,
        help="proposals: recall of a scan's 3D instance proposals against the ground truth",
    )
    evaluation.add_argument(
        "--compare", action="store_true", help="ground: the box path and the candidate path side by side"
    )
    evaluation.add_argument("--data", type=Path, required=True, help="a folder of scene folders with gt.json")
    evaluation.add_argument("--out", type=Path, required=True)
    evaluation.add_argument("--limit", type=int, default=None, help="queries per scene")
    model_options(evaluation)
    evaluation.add_argument("--model", dest="vlm", default=None, help="same as --vlm")
    evaluation.set_defaults(run=cmd_eval)

    view = commands.add_parser("view", help="the Open3D viewer: the scan, queries, results, reasoning, exports")
    view.add_argument("dir", type=Path)
    view.add_argument("--connect", default=None, help="a running backend; default: start a local one")
    view.add_argument("--query", default=None, help="run this query once the scan is shown")
    view.add_argument("--mode", choices=("find", "ask", "box"), default="find")
    view.add_argument("--box", default=None, help="box mode: 'FRAME x1,y1,x2,y2'")
    view.add_argument(
        "--screenshot",
        type=Path,
        default=None,
        help="after the first result: save a screenshot (X display) and the exports, then quit",
    )
    view.add_argument("--export-dir", type=Path, default=None)
    model_options(view)
    view.set_defaults(run=cmd_view)

    nano = commands.add_parser(
        "train-nano", help="train scene-r1-nano from scratch on synthetic rooms (SFT, then GRPO) on the CPU"
    )
    nano.add_argument("--out", type=Path, default=Path("runs/nano"))
    nano.add_argument(
        "--quick", action="store_true", help="a few minutes' version of the recipe (checks the machinery)"
    )
    nano.set_defaults(run=cmd_train_nano)

    tiny = commands.add_parser(
        "make-tiny-models", help="build tiny random-weight Qwen2.5-VL and SAM2 models (tests, offline machines)"
    )
    tiny.add_argument("--out", type=Path, required=True)
    tiny.set_defaults(run=cmd_make_tiny_models)

    bench = commands.add_parser("bench", help="benchmarks, each against a baseline measured in the same run")
    bench.add_argument(
        "what",
        nargs="?",
        choices=("io", "lifting", "pipeline", "transport", "all"),
        default="io",
        help="io: synthetic rendering and reader speed; lifting: 3D mask accuracy vs naive union, and throughput; pipeline: overhead per query beside model time; transport: upload vs raw pyzmq, compression, cached queries",
    )
    bench.add_argument(
        "--real",
        type=Path,
        default=None,
        help="a real capture folder (default: ../shared/data/redkitchen-7scenes if present)",
    )
    bench.add_argument("--frames", type=int, default=20)
    bench.add_argument("--width", type=int, default=640)
    bench.add_argument("--height", type=int, default=480)
    bench.set_defaults(run=cmd_bench)

    demo = commands.add_parser("demo", help="the main job as it stands: synthesize, read back, summarize, picture")
    demo.add_argument("--out", default="out/demo")
    demo.add_argument("--real", type=Path, default=None)
    demo.add_argument(
        "--vlm",
        default=None,
        help="the model for grounding and questions (default: the shipped scene-r1-nano, if present)",
    )
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except SceneError as error:
        print(f"scene-r1 {args.command}: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:  # the client's BackendError / ServerUnavailable
        if type(error).__name__ not in ("BackendError", "ServerUnavailable"):
            raise
        print(f"scene-r1 {args.command}: {error}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
