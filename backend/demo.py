"""The main job as it stands: make a synthetic scene, read it back through the same readers real
scans use, show what it holds and its ground truth, and draw a picture of a query's target."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from rich.console import Console

from ..shared.results import QueryResult
from ..shared.scene import summarize_scene
from .data import DEFAULT_REAL, open_scene
from .data.synth import SynthConfig, load_ground_truth, write_synthetic
from .eval.metrics import box_iou_3d
from .models.loading import SHIPPED_NANO
from .pipeline.results import write_result


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
        cv2.putText(
            tile, f"t={scene.timestamps[index]:.2f}s", (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1
        )
        tiles.append(tile)
    sheet = np.concatenate(tiles, axis=1)
    banner = np.zeros((28, sheet.shape[1], 3), np.uint8)
    cv2.putText(banner, query["text"], (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1)
    return np.concatenate([banner, sheet], axis=0)


def mask_overlay(scene, frame_index: int, points: np.ndarray, box_2d=None) -> np.ndarray:
    """A frame with the 3D mask's points projected onto it (depth-tested) and the 2D box."""
    from ..shared.geometry import project_points

    frame = scene.frame(frame_index)
    image = np.ascontiguousarray(frame.rgb[..., ::-1]).copy()
    uv, depth = project_points(points, frame.intrinsics, frame.pose)
    width, height = frame.intrinsics.size
    inside = (depth > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < width - 0.5) & (uv[:, 1] >= 0) & (uv[:, 1] < height - 0.5)
    u, v = np.rint(uv[inside]).astype(int).T
    depth_map = cv2.resize(np.nan_to_num(frame.depth), (width, height), interpolation=cv2.INTER_NEAREST)
    visible = np.abs(depth_map[v, u] - depth[inside]) < 0.05 + 0.02 * depth[inside]
    overlay = image.copy()
    overlay[v[visible], u[visible]] = (0, 90, 255)
    image = cv2.addWeighted(overlay, 0.6, image, 0.4, 0)
    if box_2d is not None:
        x1, y1, x2, y2 = (int(round(c)) for c in box_2d)
        cv2.rectangle(image, (x1, y1), (x2, y2), (0, 255, 0), 1)
    return image


def _print_stages(console, result: QueryResult) -> None:
    for line in result.reasoning_text().splitlines():
        console.print(f"  {line[:200]}", markup=False)


def run_demo(out: Path, real_dir: Path | None = None, vlm: str | None = None) -> None:
    import subprocess

    from ..shared.client import Client
    from .service.local import spawn_local_server, stop_local_server

    console = Console()
    out.mkdir(parents=True, exist_ok=True)
    scene_dir = out / "synthetic-scene"
    console.rule("1. a synthetic room with exact ground truth")
    write_synthetic(SynthConfig(seed=7, frames=40, width=320, height=240, fps=4.0), scene_dir, progress=True)
    scene, gt = open_scene(scene_dir), load_ground_truth(scene_dir)
    for key, value in summarize_scene(scene).items():
        console.print(f"  {key}: {value}")
    relation = next((q for q in gt["queries"] if q["kind"] == "relation"), gt["queries"][0])
    cv2.imwrite(str(out / "query.png"), query_sheet(scene, gt, relation))

    console.rule("2. the backend, reached through the client Blender uses")
    vlm = vlm or (str(SHIPPED_NANO) if (SHIPPED_NANO / "config.json").exists() else None)
    extra = ["--tracker", "geometric"]
    if vlm:
        extra += ["--vlm", vlm, "--dtype", "float32"]  # a model folder's scene_r1.json says how to ask it
    address, server = spawn_local_server(extra, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        with Client(address, timeout=300) as client:
            console.print(f"  backend {client.hello()['name']} at {address}; model: {vlm or 'none (box prompts only)'}")
            key = client.upload(scene)
            console.print(f"  uploaded the scene once: {key}")
            _demo_box(console, client, key, scene, gt, relation, out)
            if vlm:
                _demo_language(console, client, key, scene, gt, relation, out)
                _demo_candidates(console, client, out)
            else:
                console.print("  no vision-language model here: pass --vlm ID_OR_FOLDER for grounding and questions")
    finally:
        stop_local_server(server)
    real_dir = real_dir or DEFAULT_REAL
    if Path(real_dir).is_dir():
        console.rule("a real RGB-D sequence")
        for key_name, value in summarize_scene(open_scene(real_dir)).items():
            console.print(f"  {key_name}: {value}")
    console.rule("done")
    console.print(
        f"  results: {out}/lift (and ground/ when a model is present): result.json, mask.ply, mask_over_frame.png"
    )


def _demo_box(console, client, key: str, scene, gt: dict, relation: dict, out: Path) -> None:
    console.rule("3. one box on one frame -> the object in 3D (the annotator's path)")
    target = next(o for o in gt["objects"] if o["id"] == relation["target_id"])
    frame = int(max(target["pixels"], key=target["pixels"].get))
    box = target["boxes"][str(frame)]
    result = client.query(key, "lift", frame=frame, box=box)
    lifted = result.lifted[0]
    iou = box_iou_3d(lifted.mask3d.aabb, target["aabb"])
    console.print(
        f"  box {box} on frame {frame} ({target['name']}) -> {len(lifted.mask3d.points)} points, "
        f"3D IoU with the truth {iou:.2f}"
    )
    write_result(result, out / "lift")
    overlay = mask_overlay(scene, frame, lifted.mask3d.points, lifted.box_2d)
    cv2.imwrite(str(out / "lift" / "mask_over_frame.png"), overlay)


def _demo_language(console, client, key: str, scene, gt: dict, relation: dict, out: Path) -> None:
    console.rule("4. find an object by language")
    target = next(o for o in gt["objects"] if o["id"] == relation["target_id"])
    result = client.query(key, "ground", relation["text"], on_progress=lambda p: None)
    console.print(f"  query: [bold]{relation['text']}[/bold] (the {target['name']}, seen {relation['spans']})")
    _print_stages(console, result)
    if result.lifted:
        first = result.lifted[0]
        iou = box_iou_3d(first.mask3d.aabb, target["aabb"])
        console.print(f"  -> span {result.span}, key frame {result.key_frame}, 3D IoU with the truth {iou:.2f}")
        write_result(result, out / "ground")
        overlay = mask_overlay(scene, result.key_frame, first.mask3d.points, first.box_2d)
        cv2.imwrite(str(out / "ground" / "mask_over_frame.png"), overlay)
    else:
        console.print(f"  -> nothing lifted: {result.failure_reason()}", markup=False)
    console.rule("5. ask a question")
    for qa in gt["qa"][:3]:
        result = client.query(key, "ask", qa["question"])
        _print_stages(console, result)
        console.print(f"  [bold]{qa['question']}[/bold] -> {result.answer} (truth: {qa['answer']})")


def _demo_candidates(console, client, out: Path, seed: int = 50100, queries: int = 4) -> None:
    """A household room that knows its objects, as a Blender capture does: queried by choosing among
    them (the candidate path, the shipped nano-v2 choosing), each answer beside the truth."""
    from .data.synth.household_scene import HouseholdConfig, write_household

    console.rule("6. a room that knows its objects (as a Blender capture does): choosing among them")
    folder = out / "household-room"
    gt = write_household(HouseholdConfig(seed=seed, frames=20, width=256, height=192), folder)
    scene = open_scene(folder)
    key = client.upload(scene)
    truth_names = {o["id"]: o["name"] for o in gt["objects"]}
    by_target = {}
    for query in gt["queries"]:  # one query per object, the first the room's generator wrote for it
        if query["unique"]:
            by_target.setdefault(tuple(query["target_ids"]), query)
    asked = list(by_target.values())[:queries]
    right = 0
    for query in asked:
        result = client.query(key, "ground", query["text"])
        chosen = [scene.candidates.by_id(i).name for i in result.stages.get("choose", {}).get("ids", [])]
        truth = [truth_names[i] for i in query["target_ids"]]
        right += sorted(chosen) == sorted(truth)
        console.print(f"  {query['text']!r} -> {chosen} (truth {truth})", markup=False)
    console.print(f"  {right} of {len(asked)} exactly right (a 9 MB model; its card says where it fails)")
