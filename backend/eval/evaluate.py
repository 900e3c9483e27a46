"""`scene-r1 eval`: the full pipeline over a dataset, scored against its ground truth.

ground: 3D Acc@0.25 / Acc@0.5 of the first lifted instance's box, temporal IoU of the span, 2D IoU
and Acc@0.5 of the key-frame box, per-stage timings; overall and on ScanRefer's "unique" /
"multiple" split (is the target the only object of its class?). vqa: exact match (normalized).
Writes OUT/eval.json (every row and the summary) and OUT/eval.md (the table).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...shared.scene import SceneError
from ..data import open_scene
from ..models.parsing import ParseError, normalize_answer
from ..training.records import scene_folders
from .metrics import accuracy_at, box_iou_2d, box_iou_3d, temporal_iou


def ground_row(result, query: dict, target: dict, targets: list[dict] | None = None) -> dict:
    """One query's scores from a pipeline result and the scene's ground truth. With several targets
    ("all the X"), the 3D IoU is the worst target's best match, and 0 unless exactly that many
    instances were lifted."""
    lifted = next((i for i in result.instances if i.mask3d is not None), None)
    iou3d = box_iou_3d(lifted.mask3d.aabb, np.array(target["aabb"])) if lifted is not None else 0.0
    if targets is not None and len(targets) > 1:
        boxes = [i.mask3d.aabb for i in result.instances if i.mask3d is not None]
        best = [max((box_iou_3d(b, np.array(t["aabb"])) for b in boxes), default=0.0) for t in targets]
        iou3d = min(best) if len(boxes) == len(targets) else 0.0
    span = result.span or (0.0, 0.0)
    tiou = max((temporal_iou(span, s) for s in query["spans"]), default=0.0)
    truth_box = target["boxes"].get(str(result.key_frame))
    box = result.instances[0].box_2d if result.instances else None
    iou2d = box_iou_2d(box, truth_box) if (box is not None and truth_box is not None) else 0.0
    return {
        "query": query["text"],
        "unique": bool(query.get("unique", True)),
        "iou3d": float(iou3d),
        "temporal_iou": float(tiou),
        "iou2d": float(iou2d),
        "key_frame": result.key_frame,
        "span": list(span),
        "box_3d": lifted.mask3d.aabb.tolist() if lifted is not None else None,
        "timings": dict(result.timings),
    }


def summarize_ground(rows: list[dict]) -> dict:
    def block(selected):
        if not selected:
            return {"queries": 0}
        stages = sorted({k for r in selected for k in r["timings"]})
        return {
            "queries": len(selected),
            "acc@0.25": accuracy_at([r["iou3d"] for r in selected], 0.25),
            "acc@0.5": accuracy_at([r["iou3d"] for r in selected], 0.5),
            "temporal_iou": float(np.mean([r["temporal_iou"] for r in selected])),
            "iou2d": float(np.mean([r["iou2d"] for r in selected])),
            "acc2d@0.5": accuracy_at([r["iou2d"] for r in selected], 0.5),
            "seconds": {s: float(np.mean([r["timings"].get(s, 0.0) for r in selected])) for s in stages},
        }

    return {
        "overall": block(rows),
        "unique": block([r for r in rows if r["unique"]]),
        "multiple": block([r for r in rows if not r["unique"]]),
    }


def summarize_vqa(rows: list[dict]) -> dict:
    """Exact match, beside the majority-answer baseline (always answering the commonest reference)."""
    references = [normalize_answer(str(r["reference"])) for r in rows]
    majority = max(set(references), key=lambda a: (references.count(a), a)) if references else ""
    return {
        "overall": {
            "questions": len(rows),
            "exact_match": float(np.mean([r["exact_match"] for r in rows])) if rows else 0.0,
            "majority_answer": majority,
            "majority_baseline": float(np.mean([a == majority for a in references])) if rows else 0.0,
        }
    }


def evaluate(data, task: str, pipeline, out, limit: int | None = None, progress=None) -> dict:
    rows = []
    folders = scene_folders(data)
    for folder in folders:
        truth = json.loads((Path(folder) / "gt.json").read_text(encoding="utf-8"))
        scene = open_scene(folder)
        objects = {o["id"]: o for o in truth["objects"]}
        items = truth["queries"] if task == "ground" else truth["qa"]
        for item in items[:limit]:
            if task == "ground":
                try:
                    targets = [objects[t] for t in item.get("target_ids", [item["target_id"]])]
                    row = ground_row(pipeline.ground(scene, item["text"]), item, targets[0], targets)
                except (ParseError, SceneError) as error:  # the model found nothing usable: a miss
                    row = {
                        "query": item["text"],
                        "unique": bool(item.get("unique", True)),
                        "iou3d": 0.0,
                        "temporal_iou": 0.0,
                        "iou2d": 0.0,
                        "timings": {},
                        "error": str(error),
                    }
            else:
                try:
                    answer = pipeline.ask(scene, item["question"]).answer
                except (ParseError, SceneError) as error:
                    answer = f"(error: {error})"
                row = {
                    "question": item["question"],
                    "answer": answer,
                    "reference": item["answer"],
                    "exact_match": float(normalize_answer(answer) == normalize_answer(str(item["answer"]))),
                }
            row["scene"] = Path(folder).name
            rows.append(row)
            if progress is not None:
                progress(len(rows))
    summary = summarize_ground(rows) if task == "ground" else summarize_vqa(rows)
    report = {"task": task, "data": str(data), "scenes": len(folders), "summary": summary, "rows": rows}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    (out / "eval.md").write_text(markdown_table(report), encoding="utf-8")
    return report


def markdown_table(report: dict) -> str:
    lines = [f"# scene-r1 eval: {report['task']} on {report['data']} ({report['scenes']} scenes)", ""]
    if report["task"] == "ground":
        lines += [
            "| split | queries | 3D Acc@0.25 | 3D Acc@0.5 | temporal IoU | 2D IoU | 2D Acc@0.5 |",
            "|---|---|---|---|---|---|---|",
        ]
        for split, block in report["summary"].items():
            if block["queries"]:
                lines.append(
                    f"| {split} | {block['queries']} | {block['acc@0.25']:.3f} | {block['acc@0.5']:.3f} "
                    f"| {block['temporal_iou']:.3f} | {block['iou2d']:.3f} | {block['acc2d@0.5']:.3f} |"
                )
        seconds = report["summary"]["overall"].get("seconds", {})
        if seconds:
            lines += ["", "| stage | mean seconds per query |", "|---|---|"] + [
                f"| {k} | {v:.3f} |" for k, v in seconds.items()
            ]
    else:
        block = report["summary"]["overall"]
        lines += [
            "| questions | exact match | majority-answer baseline |",
            "|---|---|---|",
            f"| {block['questions']} | {block['exact_match']:.3f} | "
            f'{block.get("majority_baseline", 0.0):.3f} ("{block.get("majority_answer", "")}") |',
        ]
    return "\n".join(lines) + "\n"
