"""`scene-r1 label`: every instance of every class in every scan, written as the exports (ScanNet's
files, COCO JSON, GLB and USDZ per object). One scan is one unit of work: run here one after the
other, or as one Ray task each on a cluster (Ray schedules; GPUs are requested per task). A scan
whose out/<scan>/done.json records the same classes and formats is skipped, so a run resumes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ...shared.results import QueryResult
from ...shared.scene import SceneError
from ..exports import FORMATS, export_scan, labelled_objects
from ..exports.coco import merge_coco
from ..exports.names import safe_stem
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
    identity = _identity(job)  # the scan's state as it is now, before anything is written
    if done.is_file():
        try:
            summary = json.loads(done.read_text(encoding="utf-8"))
            if all(summary.get(key) == value for key, value in identity.items()):
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
        write_result(result, out / "results" / safe_stem(label, "class"), frame_numbers=scene.frame_numbers)
        results.append((label, result))
    objects = labelled_objects(results)
    manifest = export_scan(scene, objects, out, list(job.classes), formats=job.formats, name=out.name)
    # The same object found under two classes keeps its scan vertices under the more confident one:
    # count what was exported with vertices, and what the model found, separately.
    kept = [o["label"] for o in manifest["objects"] if o["vertices"]]
    counts = {label: kept.count(label) for label in job.classes}
    found = {label: sum(1 for o in objects if o.label == label) for label in job.classes}
    summary = {
        **identity,
        "name": out.name,
        "instances": counts,
        "found": found,
        "frames": len(scene),
        "seconds": round(time.perf_counter() - start, 3),
        "notes": sorted({n for _, r in results for n in r.notes}),
        "files": manifest["files"],
    }
    done.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return summary


def settings_hash(settings: PipelineSettings) -> str:
    """The settings a scan was labelled with (model, tracker, device, every knob), as a short hash."""
    text = json.dumps(asdict(settings), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _identity(job: LabelJob) -> dict:
    """What a done.json must match for its scan to be skipped: the same scan, unchanged, and the same
    classes, formats, settings."""
    return {
        "scan": job.scan,
        "scan_state": scan_state(job.scan, exclude=job.out),
        "classes": list(job.classes),
        "formats": list(job.formats),
        "settings_hash": settings_hash(job.settings),
    }


def scan_state(scan: str, exclude: str | None = None) -> str:
    """A scan's files as a short hash of their names, sizes and modification times: a scan written
    again (another capture in the same folder) is labelled again, not skipped with stale labels.
    What is written inside the scan folder (`exclude`, the labels themselves; the viewer's exports)
    does not count."""
    root = Path(scan)
    if not root.exists():
        return "missing"  # opening it says so
    skip = [Path(exclude).resolve()] if exclude else []
    skip.append(root.resolve() / "scene-r1-exports")
    files = (
        sorted(p for p in root.rglob("*") if p.is_file() and not any(p.resolve().is_relative_to(s) for s in skip))
        if root.is_dir()
        else [root]
    )
    digest = hashlib.sha256()
    for path in files:
        info = path.stat()
        digest.update(
            f"{path.relative_to(root) if root.is_dir() else path.name}\0{info.st_size}\0{info.st_mtime_ns}\n".encode()
        )
    return digest.hexdigest()[:16]


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


def scan_jobs(scans, classes, out, settings, formats=FORMATS, threads=None) -> list[LabelJob]:
    """One job per scan, each with its own output folder named after the scan (made unique)."""
    classes = class_names(classes)
    if not classes:
        raise SceneError('--classes names no class (give a comma-separated list, e.g. "chair,table,mug")')
    paths = []
    for scan in scans:
        path = Path(scan)
        if not path.exists():
            raise SceneError(f"no such scan: {path}")
        paths.append(path.resolve())  # absolute: a Ray worker does not share this working directory
    paths = list(dict.fromkeys(paths))  # a scan named twice is labelled once
    names = folder_names(paths)
    return [
        LabelJob(str(path), str(Path(out).resolve() / names[path]), classes, settings, tuple(formats), threads)
        for path in paths
    ]


def folder_names(paths: list[Path]) -> dict[Path, str]:
    """Each scan's output folder name: its own name; scans sharing one are numbered in path order
    (never onto another scan's own name: a/room, b/room, c/room-2 -> room, room-3, room-2), so a
    scan keeps its folder whatever order the scans are given in (and a rerun skips it)."""
    own = {path: path.stem if path.is_file() else path.name for path in sorted(set(paths))}
    shared = Counter(own.values())
    used: set[str] = set()
    names = {}
    for path in sorted(own, key=lambda p: (shared[own[p]] > 1, str(p))):  # unique names first
        name, n = own[path], 1
        while (name if n == 1 else f"{name}-{n}") in used or (n > 1 and f"{name}-{n}" in own.values()):
            n += 1
        names[path] = name if n == 1 else f"{name}-{n}"
        used.add(names[path])
    return names


def class_names(classes) -> tuple[str, ...]:
    """--classes as labels: lower case, single spaces, each class once ("Bowl", "bowls" and "BOWL" are
    the bowl of the first spelling; inflect compares the nouns)."""
    import inflect

    engine, kept = inflect.engine(), []
    for text in classes:
        name = " ".join(text.lower().split())
        if name and not any(name == k or engine.compare_nouns(name, k) for k in kept):
            kept.append(name)
    return tuple(kept)


def run_local(jobs: list[LabelJob], on_done: Callable[[dict], None]) -> list[dict]:
    summaries = []
    for job in jobs:
        summaries.append(_guarded(job))
        on_done(summaries[-1])
    return summaries


def _guarded(job: LabelJob) -> dict:
    """One scan's summary; a scan that fails (bad input, or anything its run raises) is recorded as
    failed and the run goes on with the others."""
    try:
        return label_scan(job)
    except (SceneError, OSError) as error:
        return failed_summary(job, str(error))
    except Exception as error:  # noqa: BLE001 - one scan's failure must not end a batch of many
        return failed_summary(job, f"{type(error).__name__}: {error}")


def failed_summary(job: LabelJob, error: str) -> dict:
    return {"scan": job.scan, "name": Path(job.out).name, "error": error, "instances": {}, "seconds": 0.0}


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
            try:
                summaries[job.out] = ray.get(ready[0])
            except Exception as error:  # noqa: BLE001 - a worker that died (OOM, lost node): this scan fails
                summaries[job.out] = failed_summary(job, f"the Ray task failed: {type(error).__name__}: {error}")
            on_done(summaries[job.out])
        return [summaries[job.out] for job in jobs]
    finally:
        if started:
            ray.shutdown()


def task_resources(settings: PipelineSettings | None, cpus_per_task: int = 1, gpus_per_task=None) -> dict:
    """What each Ray task asks the cluster for: CPUs, and GPUs: `gpus_per_task` when given (a task
    with device "auto" then finds them on its worker), else one when the device is CUDA. "auto" is
    resolved on the worker, so without --gpus-per-task an "auto" task asks for none and runs on a CPU."""
    if cpus_per_task < 1 or (gpus_per_task is not None and gpus_per_task < 0):
        raise SceneError("--cpus-per-task must be at least 1 and --gpus-per-task not negative")
    cuda = settings is not None and settings.device.startswith("cuda")
    return {"num_cpus": cpus_per_task, "num_gpus": gpus_per_task if gpus_per_task is not None else (1 if cuda else 0)}


def write_summary(out, jobs: list[LabelJob], summaries: list[dict]) -> dict:
    """out/summary.json, out/summary.md (instances per class per scan, seconds per scan), out/coco.json
    (every scan's COCO merged) and out/classes.tsv (the ids in labels.ply)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)  # every scan may have failed before writing anything
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
