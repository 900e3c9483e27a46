"""`scene-r1 label` (every instance of some classes in many scans, locally or on a Ray cluster) and
`scene-r1 export` (a result folder's objects as GLB / USDZ, ScanNet files, COCO JSON)."""

from __future__ import annotations

from pathlib import Path

from ...shared.scene import SceneError
from .common import at_least, model_arguments, pipeline_settings, scene_arguments

SCANS_FAILED = 3  # exit status when some scans failed (the others are labelled); 1 is an internal error


def register(commands) -> None:
    label = commands.add_parser(
        "label", help="every instance of every class in every scan -> ScanNet files, COCO JSON, GLB/USDZ per object"
    )
    label.add_argument("scans", nargs="+", type=Path, help="capture folders or files (formats auto-detected)")
    label.add_argument("--classes", required=True, help='comma-separated, e.g. "chair,table,mug"')
    label.add_argument("--out", type=Path, required=True, help="one folder per scan is written inside")
    label.add_argument("--formats", default="glb,usdz,scannet,coco", help="any of glb, usdz, scannet, coco")
    label.add_argument(
        "--ray-address",
        default=None,
        help="run one Ray task per scan: 'auto', 'ray://HEAD:10001', or 'local' to start Ray here",
    )
    label.add_argument("--ray-cpus", type=at_least(1), default=None, help="CPUs of a Ray instance started with 'local'")
    label.add_argument("--cpus-per-task", type=at_least(1), default=1, help="CPUs (and torch threads) per Ray task")
    label.add_argument(
        "--gpus-per-task",
        type=float,
        default=None,
        help="GPUs per Ray task (default: 1 when --device is cuda, else 0; with --device auto, give it to use GPUs)",
    )
    label.add_argument("--threads", type=at_least(1), default=None, help="torch threads per scan when run locally")
    label.add_argument(
        "--evaluate",
        action="store_true",
        help="score the ScanNet files against scans with ground truth (synthetic rooms): AP@0.25/0.5",
    )
    model_arguments(label)
    label.epilog = f"exit status: 0 all scans labelled, {SCANS_FAILED} some scans failed (see summary.md), 2 bad input"
    label.set_defaults(run=run_label)

    export = commands.add_parser("export", help="a result folder's objects as GLB/USDZ, ScanNet files and COCO JSON")
    scene_arguments(export)
    export.add_argument(
        "--result",
        type=Path,
        action="append",
        required=True,
        help="a folder written by scene-r1 ground or lift (repeat for several)",
    )
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--formats", default="glb,usdz,scannet,coco", help="any of glb, usdz, scannet, coco")
    export.set_defaults(run=run_export)


def _formats(text: str) -> tuple[str, ...]:
    from ..exports import FORMATS

    formats = tuple(f.strip() for f in text.split(",") if f.strip())
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise SceneError(f"--formats takes some of {', '.join(FORMATS)}, got {text!r}")
    return formats


def run_label(args) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..pipeline.labelling import run_local, run_ray, scan_jobs, write_summary

    formats = _formats(args.formats)
    if args.evaluate and "scannet" not in formats:  # said before any scan is labelled
        raise SceneError("--evaluate scores the ScanNet files: add scannet to --formats")
    jobs = scan_jobs(args.scans, args.classes.split(","), args.out, pipeline_settings(args), formats, args.threads)
    where = f"Ray ({args.ray_address})" if args.ray_address else "here"
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()) as bar:
        task = bar.add_task(f"labelling {len(jobs)} scan(s) {where}", total=len(jobs))

        def on_done(summary):
            bar.console.print(
                f"{summary['name']}: "
                + (
                    summary.get("error")
                    or (
                        "skipped (done before)"
                        if summary.get("skipped")
                        else f"{sum(summary['instances'].values())} instance(s) in {summary['seconds']:.1f} s"
                    )
                ),
                markup=False,  # scan names and errors are data: "[...]" in them is not rich markup
                highlight=False,
            )
            bar.advance(task)

        if args.ray_address:
            summaries = run_ray(jobs, args.ray_address, on_done, args.cpus_per_task, args.gpus_per_task, args.ray_cpus)
        else:
            summaries = run_local(jobs, on_done)
    report = write_summary(args.out, jobs, summaries)
    # Tables as plain text: rich would wrap their rows at 80 columns when piped, and read class names
    # in [brackets] as markup.
    print((args.out / "summary.md").read_text(encoding="utf-8"))
    if args.evaluate:
        _evaluate(args.out, report)
    print(f"wrote {args.out}/summary.json, summary.md, coco.json and one folder per scan")
    failed = [s["name"] for s in summaries if "error" in s]
    if failed:
        print(f"{len(failed)} of {len(summaries)} scan(s) failed: {', '.join(failed)} (exit {SCANS_FAILED})")
    return SCANS_FAILED if failed else 0


def _evaluate(out, report: dict) -> None:
    """Scores of the labelled scans that carry ground truth; none carrying it is said, not an error
    (the labels are written)."""
    from ..eval.instances import evaluate_labelling, markdown

    try:
        scores = evaluate_labelling(out, report["scans"])
    except SceneError as error:
        (out / "eval.md").unlink(missing_ok=True)  # not an earlier run's scores beside these labels
        print(f"--evaluate: {error}")
        return
    (out / "eval.md").write_text(markdown(scores), encoding="utf-8")
    print(f"instance segmentation on {len(scores['scans'])} scan(s) with ground truth:")
    print(markdown(scores))
    for note in scores["skipped"]:
        print(f"not scored: {note}")


def run_export(args) -> int:
    from ..data import open_scene
    from ..exports import export_scan, labelled_objects, read_result
    from ..exports.bundle import check_result_fits

    scene = open_scene(args.dir, args.format)
    results = [read_result(folder) for folder in args.result]
    for folder, result in zip(args.result, results):  # another scan's masks would cut the wrong faces
        note = check_result_fits(result, scene, f"{folder} does not fit {args.dir}")
        if note:
            print(f"note: {folder} {note}")
    objects = labelled_objects([("", result) for result in results])
    if not objects:
        raise SceneError("the result folder(s) hold no lifted object to export")
    manifest = export_scan(scene, objects, args.out, formats=_formats(args.formats))
    for entry in manifest["objects"]:
        files = ", ".join(entry[k] for k in ("glb", "usdz") if k in entry) or entry.get("error", "")
        print(f"object {entry['object_id']} ({entry['label']}): {entry['vertices']} scan vertices; {files}")
        for problem in entry.get("usd_problems", []):
            print(f"  usd check: {problem}")
    print(f"wrote {args.out}/export.json" + "".join(f", {k}" for k in manifest["files"]))
    return 0
