"""`scene-r1 label`: every instance of every class in every scan, written as the exports (ScanNet's
files, COCO JSON, GLB and USDZ per object). One scan is one unit of work: run here one after the
other, or as one Ray task each on a cluster (Ray schedules; GPUs are requested per task). A scan
whose out/<scan>/done.json records the same classes and formats is skipped, so a run resumes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ...shared.results import QueryResult
from ...shared.scene import SceneError
from ..exports import FORMATS, export_scan, labelled_objects
from ..exports.coco import merge_coco
from .settings import PipelineSettings

DONE_FILE = "done.json"
_PIPELINES: dict = {}  # one loaded pipeline per settings, per process (a Ray worker keeps it between scans)


@dataclass(frozen=True)
class LabelJob:
    scan: str  # a capture folder or file, any format open_scene reads
    out: str  # this scan's output folder
    classes: tuple[str, ...]
    settings: PipelineSettings
    formats: tuple[str, ...] = FORMATS
    threads: int | None = None  # torch threads for this scan (None: torch's default)


def label_scan(job: LabelJob) -> dict:
    """Label one scan; returns its summary (also out/done.json). The per-class step is a single
    Pipeline.ground(..., every=True) call, so better grounding in the pipeline shows up here as is."""
    out = Path(job.out)
    done = out / DONE_FILE
    if done.is_file():
        try:
            summary = json.loads(done.read_text(encoding="utf-8"))
            if summary.get("classes") == list(job.classes) and summary.get("formats") == list(job.formats):
                return summary | {"skipped": True}
        except (ValueError, UnicodeDecodeError):
            pass  # a damaged record: label the scan again
    start = time.perf_counter()
    from ..data import open_scene
    from ..models.parsing import ParseError
    from .results import write_result

    if job.threads:
        import torch

        torch.set_num_threads(job.threads)
    scene = open_scene(job.scan)
    pipeline = _pipeline(job.settings)
    results = []
    for label in job.classes:
        try:
            with repeatable_geometry():
                result = pipeline.ground(scene, label, every=True)
        except (ParseError, SceneError) as error:  # the model found nothing usable: no instance
            result = QueryResult(query=label, scene=scene.name, notes=[f"nothing found: {error}"])
        write_result(result, out / "results" / _slug(label))
        results.append((label, result))
    objects = labelled_objects(results)
    manifest = export_scan(scene, objects, out, list(job.classes), formats=job.formats, name=out.name)
    # The same object found under two classes keeps its scan vertices under the more confident one:
    # count what was exported with vertices, and what the model found, separately.
    kept = [o["label"] for o in manifest["objects"] if o["vertices"]]
    counts = {label: kept.count(label) for label in job.classes}
    found = {label: sum(1 for o in objects if o.label == label) for label in job.classes}
    summary = {
        "scan": job.scan,
        "name": out.name,
        "classes": list(job.classes),
        "formats": list(job.formats),
        "instances": counts,
        "found": found,
        "frames": len(scene),
        "seconds": round(time.perf_counter() - start, 3),
        "notes": sorted({n for _, r in results for n in r.notes}),
        "files": manifest["files"],
    }
    done.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


@contextmanager
def repeatable_geometry():
    """Same scan, same labels: the geometric steps draw random numbers (Open3D's RANSAC plane fit,
    OpenCV's GrabCut), and Open3D's threads draw them in a different order each run. Seeded and on
    one Open3D thread, a scan's labels repeat exactly, here or on any Ray worker."""
    import cv2
    import open3d as o3d

    threads = o3d.utility.get_max_threads()
    o3d.utility.set_max_threads(1)
    o3d.utility.random.seed(0)
    cv2.setRNGSeed(0)
    try:
        yield
    finally:
        o3d.utility.set_max_threads(threads)


def _pipeline(settings: PipelineSettings):
    from .pipeline import Pipeline

    if settings not in _PIPELINES:
        _PIPELINES[settings] = Pipeline(settings)
    return _PIPELINES[settings]


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label.lower()).strip("-") or "class"


def scan_jobs(scans, classes, out, settings, formats=FORMATS, threads=None) -> list[LabelJob]:
    """One job per scan, each with its own output folder named after the scan (made unique)."""
    classes = tuple(dict.fromkeys(c.strip() for c in classes if c.strip()))
    if not classes:
        raise SceneError('--classes names no class (give a comma-separated list, e.g. "chair,table,mug")')
    jobs, used = [], set()
    for scan in scans:
        path = Path(scan)
        if not path.exists():
            raise SceneError(f"no such scan: {path}")
        name, n = path.stem if path.is_file() else path.resolve().name, 1
        while (name if n == 1 else f"{name}-{n}") in used:
            n += 1
        name = name if n == 1 else f"{name}-{n}"
        used.add(name)
        # absolute paths: a Ray worker does not share this process's working directory
        jobs.append(
            LabelJob(str(path.resolve()), str(Path(out).resolve() / name), classes, settings, tuple(formats), threads)
        )
    return jobs


def run_local(jobs: list[LabelJob], on_done: Callable[[dict], None]) -> list[dict]:
    summaries = []
    for job in jobs:
        summaries.append(_guarded(job))
        on_done(summaries[-1])
    return summaries


def _guarded(job: LabelJob) -> dict:
    try:
        return label_scan(job)
    except (SceneError, OSError) as error:
        return {"scan": job.scan, "name": Path(job.out).name, "error": str(error), "instances": {}, "seconds": 0.0}


def run_ray(
    jobs: list[LabelJob],
    address: str,
    on_done,
    cpus_per_task: int = 1,
    gpus_per_task: float | None = None,
    local_cpus: int | None = None,
    task_timeout: float = 3600.0,
) -> list[dict]:
    """One Ray task per scan. address: a cluster ("auto", "ray://head:10001") or "local" (start one
    here with `local_cpus` CPUs). GPUs per task: `gpus_per_task`, by default 1 when the pipeline's
    device is CUDA. A run gives up when no task finishes within `task_timeout` seconds."""
    import ray

    started = False
    if not ray.is_initialized():
        if address == "local":
            ray.init(num_cpus=local_cpus, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        started = True
    try:
        options = task_resources(jobs[0].settings if jobs else None, cpus_per_task, gpus_per_task)
        task = ray.remote(max_retries=1, **options)(_guarded)
        pending = {task.remote(replace(job, threads=job.threads or cpus_per_task)): job for job in jobs}
        summaries = {}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=task_timeout)
            if not ready:
                for ref in pending:
                    ray.cancel(ref, force=True)
                raise SceneError(f"no scan finished within {task_timeout:.0f} s; cancelled {len(pending)} task(s)")
            job = pending.pop(ready[0])
            summaries[job.out] = ray.get(ready[0])
            on_done(summaries[job.out])
        return [summaries[job.out] for job in jobs]
    finally:
        if started:
            ray.shutdown()


def task_resources(settings: PipelineSettings | None, cpus_per_task: int = 1, gpus_per_task=None) -> dict:
    """What each Ray task asks the cluster for: CPUs, and one GPU when the pipeline runs on CUDA."""
    if cpus_per_task < 1 or (gpus_per_task is not None and gpus_per_task < 0):
        raise SceneError("--cpus-per-task must be at least 1 and --gpus-per-task not negative")
    cuda = settings is not None and settings.device.startswith("cuda")
    return {"num_cpus": cpus_per_task, "num_gpus": gpus_per_task if gpus_per_task is not None else (1 if cuda else 0)}


def write_summary(out, jobs: list[LabelJob], summaries: list[dict]) -> dict:
    """out/summary.json, out/summary.md (instances per class per scan, seconds per scan), out/coco.json
    (every scan's COCO merged) and out/classes.tsv (the ids in labels.ply)."""
    out = Path(out)
    classes = list(jobs[0].classes) if jobs else []
    documents = []
    for summary in summaries:
        coco = out / summary["name"] / "coco.json"
        if "error" not in summary and coco.is_file():
            documents.append((summary["name"], json.loads(coco.read_text(encoding="utf-8"))))
    if documents:
        (out / "coco.json").write_text(json.dumps(merge_coco(documents, classes)), encoding="utf-8")
    (out / "classes.tsv").write_text("".join(f"{i}\t{c}\n" for i, c in enumerate(classes, 1)), encoding="utf-8")
    report = {"classes": classes, "scans": summaries, "settings": asdict(jobs[0].settings) if jobs else {}}
    (out / "summary.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (out / "summary.md").write_text(summary_table(classes, summaries), encoding="utf-8")
    return report


def summary_table(classes: list[str], summaries: list[dict]) -> str:
    lines = ["| scan | " + " | ".join(classes) + " | seconds | status |", "|---" * (len(classes) + 3) + "|"]
    for s in summaries:
        status = "failed: " + s["error"][:80] if "error" in s else ("skipped (done)" if s.get("skipped") else "done")
        counts = " | ".join(_cell(s["instances"].get(c), s.get("found", {}).get(c)) for c in classes)
        lines.append(f"| {s['name']} | {counts} | {s['seconds']:.1f} | {status} |")
    return "\n".join(lines) + "\n"


def _cell(kept, found) -> str:
    """Instances exported for a class; where the model found more (the same object under another,
    more confident class), how many it found."""
    if kept is None:
        return ""
    return str(kept) if found in (None, kept) else f"{kept} (found {found})"
