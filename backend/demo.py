"""The main job as it stands: make a synthetic scene, read it back through the same readers real
scans use, show what it holds and its ground truth, and draw a picture of a query's target."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from rich.console import Console

from ..shared.metrics import box_iou_3d
from ..shared.scene import summarize_scene
from .bench import DEFAULT_REAL
from .io import open_scene
from .lifting import lift_to_folder
from .synth import SynthConfig, load_ground_truth, write_synthetic


def query_sheet(scene, gt: dict, query: dict, columns: int = 4) -> np.ndarray:
    """Frames where a query's target is visible, with its ground-truth 2D box drawn."""
    target = next(o for o in gt["objects"] if o["id"] == query["target_id"])
    frames = sorted(int(i) for i in target["boxes"])
    picks = [frames[int(i)] for i in np.linspace(0, len(frames) - 1, min(columns, len(frames))).round()]
    tiles = []
    for index in picks:
        tile = np.ascontiguousarray(scene.frame(index).rgb[..., ::-1])
        x1, y1, x2, y2 = target["boxes"][str(index)]
        cv2.rectangle(tile, (x1, y1), (x2 - 1, y2 - 1), (0, 255, 0), 2)
        cv2.putText(tile, f"t={scene.timestamps[index]:.2f}s", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        tiles.append(tile)
    sheet = np.concatenate(tiles, axis=1)
    banner = np.zeros((28, sheet.shape[1], 3), np.uint8)
    cv2.putText(banner, query["text"], (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1)
    return np.concatenate([banner, sheet], axis=0)


def run_demo(out: Path, real_dir: Path | None = None) -> None:
    console = Console()
    scene_dir = out / "synthetic-scene"
    console.rule("1. a synthetic room with exact ground truth")
    write_synthetic(SynthConfig(seed=7, frames=40, width=320, height=240, fps=4.0), scene_dir, progress=True)
    scene, gt = open_scene(scene_dir), load_ground_truth(scene_dir)
    for key, value in summarize_scene(scene).items():
        console.print(f"  {key}: {value}")
    console.rule("2. what can be asked about it")
    for query in gt["queries"][:6]:
        console.print(f"  find: [bold]{query['text']}[/bold] -> object {query['target_id']}, visible {query['spans']}")
    for qa in gt["qa"][:6]:
        console.print(f"  ask:  [bold]{qa['question']}[/bold] -> {qa['answer']}")
    picture = out / "query.png"
    relation = next((q for q in gt["queries"] if q["kind"] == "relation"), gt["queries"][0])
    cv2.imwrite(str(picture), query_sheet(scene, gt, relation))
    console.print(f"  picture of '{relation['text']}': {picture}")
    console.rule("3. one box on one frame -> the object in 3D (no learned weights)")
    target = next(o for o in gt["objects"] if o["id"] == relation["target_id"])
    key = max(target["pixels"], key=target["pixels"].get)
    result = lift_to_folder(scene, int(key), target["boxes"][key], out / "lift")
    iou = box_iou_3d(result["aabb"], target["aabb"])
    console.print(f"  box {target['boxes'][key]} on frame {key} -> {result['point_count']} points, 3D box IoU with the truth {iou:.2f}")
    console.print(f"  wrote {out / 'lift' / 'result.json'} and {out / 'lift' / 'mask.ply'}")
    real_dir = real_dir or DEFAULT_REAL
    if Path(real_dir).is_dir():
        console.rule("4. a real RGB-D sequence")
        for key, value in summarize_scene(open_scene(real_dir)).items():
            console.print(f"  {key}: {value}")
    console.rule("done")
    console.print("Language grounding (the VLM), SAM2 tracking and the backend service arrive next; see README.")
