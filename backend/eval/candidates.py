"""The box path and the candidate path side by side (`scene-r1 eval --task ground --compare`), and
the recall of a scan's 3D instance proposals against synthetic ground truth
(`scene-r1 eval --task proposals`).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..data import open_scene
from ..training.records import scene_folders
from .evaluate import evaluate

GROUNDINGS = ("box", "candidates")


def compare_grounding(data, settings, out, limit: int | None = None, progress=None, pipeline_class=None) -> dict:
    """Run `eval --task ground` once per grounding mode and write one table (OUT/compare.md)."""
    if pipeline_class is None:
        from ..pipeline.pipeline import Pipeline as pipeline_class
    out = Path(out)
    reports = {}
    shared_reasoner = None
    for mode in GROUNDINGS:
        pipeline = pipeline_class(replace(settings, grounding=mode), reasoner=shared_reasoner)
        reports[mode] = evaluate(data, "ground", pipeline, out / mode, limit=limit, progress=progress)
        shared_reasoner = pipeline._reasoner  # load the model once
    text = compare_table(reports)
    (out / "compare.md").write_text(text, encoding="utf-8")
    (out / "compare.json").write_text(
        json.dumps({m: r["summary"] for m, r in reports.items()}, indent=1), encoding="utf-8"
    )
    return reports


def compare_table(reports: dict) -> str:
    first = next(iter(reports.values()))
    lines = [
        f"# scene-r1 eval: ground on {first['data']} ({first['scenes']} scenes), box path vs candidate path",
        "",
        "| grounding | split | queries | 3D Acc@0.25 | 3D Acc@0.5 | seconds per query |",
        "|---|---|---|---|---|---|",
    ]
    for mode, report in reports.items():
        for split, block in report["summary"].items():
            if block["queries"]:
                seconds = block.get("seconds", {}).get("total", float("nan"))
                lines.append(
                    f"| {mode} | {split} | {block['queries']} | {block['acc@0.25']:.3f} | {block['acc@0.5']:.3f} "
                    f"| {seconds:.2f} |"
                )
    return "\n".join(lines) + "\n"


def proposal_report(data, out=None) -> dict:
    """Per scene and overall: share of ground-truth objects a proposal's box matches at 3D IoU 0.25 / 0.5."""
    from ..geometry.proposals import proposal_recall, propose

    rows = []
    for folder in scene_folders(data):
        truth = json.loads((Path(folder) / "gt.json").read_text(encoding="utf-8"))
        scene = open_scene(folder)
        start = time.perf_counter()
        proposals = propose(scene)
        seconds = time.perf_counter() - start
        boxes = {o["id"]: np.asarray(o["aabb"]) for o in truth["objects"] if o.get("boxes")}
        recall = proposal_recall(proposals, boxes)
        rows.append(
            {"scene": Path(folder).name, "seconds": seconds} | {k: v for k, v in recall.items() if k != "best_iou"}
        )
    total = sum(r["objects"] for r in rows)
    summary = {
        key: float(sum(r[key] * r["objects"] for r in rows) / max(total, 1)) for key in ("recall@0.25", "recall@0.5")
    } | {"objects": total, "proposals": sum(r["proposals"] for r in rows), "scenes": len(rows)}
    lines = ["| scene | objects | proposals | recall@0.25 | recall@0.5 | seconds |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r['scene']} | {r['objects']} | {r['proposals']} | {r['recall@0.25']:.3f} | {r['recall@0.5']:.3f} "
        f"| {r['seconds']:.2f} |"
        for r in rows
    ]
    lines.append(
        f"| all | {summary['objects']} | {summary['proposals']} | {summary['recall@0.25']:.3f} "
        f"| {summary['recall@0.5']:.3f} | |"
    )
    report = {"rows": rows, "summary": summary, "table": "\n".join(lines) + "\n"}
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "proposals.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
        (Path(out) / "proposals.md").write_text(report["table"], encoding="utf-8")
    return report


def ceiling_report(data, out=None, limit: int | None = None) -> dict:
    """The candidate path's 3D accuracy when the choice is right: each query's true ids lifted from
    their own id maps, scored like `eval --task ground` (what a perfect chooser would reach)."""
    from ..eval.metrics import accuracy_at, box_iou_3d
    from ..pipeline.candidates import CandidateGrounder, CandidateSource

    rows = []
    for folder in scene_folders(data):
        truth = json.loads((Path(folder) / "gt.json").read_text(encoding="utf-8"))
        objects = {o["id"]: o for o in truth["objects"]}
        scene = open_scene(folder)
        source = CandidateSource(scene)
        grounder = CandidateGrounder(reasoner=None)
        stride = max(1, len(scene) // 12)
        pixels = source.visible_pixels(range(0, len(scene), stride))
        for query in truth["queries"][:limit]:
            start = time.perf_counter()
            boxes = [grounder._instance(scene, source, pixels, t).mask3d for t in query["target_ids"]]
            ious = [
                box_iou_3d(b.aabb, np.asarray(objects[t]["aabb"])) if b is not None else 0.0
                for b, t in zip(boxes, query["target_ids"])
            ]
            rows.append({"unique": query["unique"], "iou3d": min(ious), "seconds": time.perf_counter() - start})
    summary = {}
    for split, selected in (("overall", rows), ("unique", [r for r in rows if r["unique"]])):
        summary[split] = {
            "queries": len(selected),
            "acc@0.25": accuracy_at([r["iou3d"] for r in selected], 0.25),
            "acc@0.5": accuracy_at([r["iou3d"] for r in selected], 0.5),
        }
    multiple = [r for r in rows if not r["unique"]]
    summary["multiple"] = {
        "queries": len(multiple),
        "acc@0.25": accuracy_at([r["iou3d"] for r in multiple], 0.25),
        "acc@0.5": accuracy_at([r["iou3d"] for r in multiple], 0.5),
    }
    lines = ["| split | queries | 3D Acc@0.25 | 3D Acc@0.5 |", "|---|---|---|---|"] + [
        f"| {k} | {v['queries']} | {v['acc@0.25']:.3f} | {v['acc@0.5']:.3f} |" for k, v in summary.items()
    ]
    report = {"summary": summary, "rows": rows, "table": "\n".join(lines) + "\n"}
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / "ceiling.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report
