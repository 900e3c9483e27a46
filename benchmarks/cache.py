"""`scene-r1 bench cache`: different queries on a scene the server already holds (its
query-independent work cached: sampled frames, the VLM's resized pixels and vision features, the
segmenter's image embeddings of the scene's key-frame views) against the first query (upload +
query), with the pipeline's defaults on this machine (the shipped scene-r1-nano on the CPU, and the
segmenter "auto" picks: MobileSAM without SAM2 weights); the same with the geometric segmenter (the
old row); and the same answers from a cold server.

The scene is the real 50-frame 7-Scenes kitchen (640x480) when it is here, else a synthetic room.
Models are loaded and warmed on another scene first, so "first" is upload + query, not loading.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..backend.data import DEFAULT_REAL
from ..backend.data.synth import SynthConfig, build_synthetic
from ..backend.models.loading import SHIPPED_NANO
from ..backend.pipeline.pipeline import Pipeline
from ..backend.pipeline.settings import PipelineSettings
from ..backend.service.server import Server, ServerSettings
from ..shared.client import Client
from ..shared.scene import Scene

# The first query, then different ones: the same object in other words, other objects, a question.
REAL_QUERIES = (
    ("ground", "the kettle"),
    ("ground", "the electric kettle"),
    ("ground", "the white cupboard"),
    ("ground", "the sink"),
    ("ask", "How many chairs are there?"),
)
ROOM_QUERIES = (
    ("ground", "the white table"),
    ("ground", "the table"),
    ("ground", "the large cube"),
    ("ask", "How many chairs are there?"),
)


def decoded(scene: Scene, name: str) -> Scene:
    """`scene` with every frame decoded once and held in memory (what the add-on or `scene-r1 ground`
    uploads), under `name`."""
    frames = [scene.frame(i) for i in range(len(scene))]
    return Scene.from_arrays(
        [f.rgb for f in frames],
        [f.depth for f in frames],
        scene.intrinsics,
        scene.poses,
        scene.timestamps,
        name=name,
        cache_frames=len(frames),
    )


def room(seed: int, frames: int = 24, width: int = 320, height: int = 240) -> Scene:
    synthetic = build_synthetic(SynthConfig(seed=seed, frames=frames, width=width, height=height))
    return decoded(synthetic.scene, f"bench-cache-{seed}")


def in_memory(folder: Path) -> Scene:
    """A capture folder's frames, decoded once."""
    from ..backend.data.readers import open_scene

    scene = open_scene(folder)
    return decoded(scene, scene.name)


def answer_of(payload: dict) -> dict:
    """What a user gets, without times: span, key frame, boxes, 3D boxes, answer, reasoning."""
    keep = ("span", "key_frame", "box_2d", "box_3d", "answer")
    out = {k: payload.get(k) for k in keep}
    out["reasoning"] = {stage: info.get("raw") for stage, info in payload.get("stages", {}).items()}
    out["instances"] = [
        (i.get("label"), i.get("mask_3d", {}).get("aabb"), i.get("mask_3d", {}).get("point_count"))
        for i in payload.get("instances", [])
    ]
    return out


class _Backend:
    """A server on a free loopback port with `settings`, in a thread."""

    def __init__(self, settings: PipelineSettings):
        self.server = Server(ServerSettings(bind="tcp://127.0.0.1:*", pipeline=settings), pipeline=Pipeline(settings))
        self.thread = threading.Thread(target=self.server.serve, daemon=True)

    def __enter__(self) -> _Backend:
        self.thread.start()
        if not self.server.ready.wait(30):
            raise RuntimeError("the benchmark's server did not start within 30 s")
        self.client = Client(self.server.endpoint, timeout=600)
        return self

    def __exit__(self, *exc):
        self.client.close()
        self.server.stop()
        self.thread.join(30)
        return False

    def settle(self, limit: float = 600.0) -> float:
        """Wait until the server has encoded the last scene's key-frame views in the background
        (pipeline/warming.py); the seconds that took. Nothing is timed while it works."""
        start = time.perf_counter()
        while self.client.health()["warming"] or self.server.runner.warming:
            if time.perf_counter() - start > limit:
                raise RuntimeError(f"the background work did not finish within {limit:.0f} s")
            time.sleep(0.1)
        return time.perf_counter() - start

    def settled(self, scene: Scene, mode: str, text: str) -> tuple[float, dict, int]:
        """`timed` once the server is idle: no background work competes with the query measured."""
        self.settle()
        return self.timed(scene, mode, text)

    def encoded(self) -> int:
        """Frames the segmenter's image encoder has run on so far (MobileSAM; 0 for the others)."""
        return getattr(getattr(self.server.pipeline().tracker, "model", None), "encoded", 0)

    def timed(self, scene: Scene, mode: str, text: str) -> tuple[float, dict, int]:
        """(seconds for upload + query, the result, frames newly encoded by the segmenter)."""
        encoded = self.encoded()
        start = time.perf_counter()
        key = self.client.upload(scene)
        payload = self.client.query(key, mode, text).to_json()
        return time.perf_counter() - start, payload, self.encoded() - encoded


@dataclass
class Run:
    name: str
    first: tuple[float, dict, int]
    warm: list[tuple[float, dict, int]]
    cold: list[tuple[float, dict, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stats: object = None
    background: float = 0.0  # seconds of idle-time work after the first answer


def measure(settings: PipelineSettings, name: str, scene: Scene, queries, warm_up: Scene) -> Run:
    with _Backend(settings) as backend:
        backend.timed(warm_up, "ground", "the red chair")  # loads and warms the models on another scene
        backend.settle()
        first = backend.timed(scene, *queries[0])
        background = backend.settle()  # the scene's views, encoded while nothing is asked
        run = Run(name, first, [backend.settled(scene, *q) for q in queries[1:]], background=background)
        run.stats = backend.server.pipeline().cache.stats
        run.notes = [n for n in backend.server.pipeline().notes if n.startswith("segmenter")]
    # Cold: a server whose work cache keeps nothing, so each query computes everything (its
    # identical-query memo never applies: the queries differ).
    with _Backend(replace(settings, work_cache_mb=0)) as backend:
        backend.timed(warm_up, "ground", "the red chair")
        run.cold = [backend.settled(scene, *q) for q in queries[1:]]
    return run


def report(run: Run, queries, scene_words: str) -> bool:
    first, _, first_encoded = run.first
    print(f"[{run.name}] {'; '.join(run.notes)}")
    print(
        f"  first query (upload + {queries[0][0]} {queries[0][1]!r}) on {scene_words}: {first:.2f} s"
        f"{f' ({first_encoded} frames encoded)' if first_encoded else ''}"
    )
    if run.background > 0.05:
        print(f"  then {run.background:.1f} s of background work while nothing was asked (the scene's key-frame views)")
    same_all, ratios = True, []
    for (mode, text), (seconds, payload, encoded), (cold_s, cold_payload, _) in zip(queries[1:], run.warm, run.cold):
        same = answer_of(payload) == answer_of(cold_payload)
        same_all &= same
        if mode != "ask":
            ratios.append(first / seconds)
        print(
            f"  then {mode} {text!r} on the cached scene: {seconds:.2f} s = {first / seconds:.1f}x faster than "
            "the first"
            f"{f' ({encoded} frames newly encoded)' if run.first[2] else ''}; with nothing cached {cold_s:.2f} s "
            f"({cold_s / seconds:.1f}x); same answer cold and warm: {'yes' if same else 'NO'}"
        )
    if ratios:
        ratios.sort()
        print(
            f"  different grounding queries on the cached scene: {ratios[0]:.1f}x to {ratios[-1]:.1f}x faster than "
            f"the first, median {ratios[len(ratios) // 2]:.1f}x (goal >= 5x)"
        )
    stats = run.stats
    print(
        f"  work cache: {stats.entries} entries, {stats.nbytes / 1e6:.1f} MB, {stats.hits} hits, "
        f"{stats.misses} misses, {stats.evictions} evictions"
    )
    return same_all


def run_cache_benchmark(real_dir: Path | None = None) -> int:
    if not (SHIPPED_NANO / "config.json").is_file():
        print(f"scene-r1 bench cache: the shipped model is not here ({SHIPPED_NANO}); nothing measured")
        return 2
    real_dir = Path(real_dir or DEFAULT_REAL)
    warm_up = room(7)
    if real_dir.is_dir():
        scene, queries = in_memory(real_dir), REAL_QUERIES
        words = f"the real kitchen ({len(scene)} frames, {scene.color_size[0]}x{scene.color_size[1]})"
    else:
        scene, queries = room(6), ROOM_QUERIES
        words = f"a synthetic room (24 frames, 320x240; the real kitchen is not at {real_dir})"
    start = time.perf_counter()
    runs = [
        measure(PipelineSettings(), "the pipeline's defaults", scene, queries, warm_up),
        measure(PipelineSettings(tracker="geometric"), "geometric segmenter (the old bench)", scene, queries, warm_up),
    ]
    same = [report(run, queries, words) for run in runs]
    print(f"(measured in {time.perf_counter() - start:.0f} s)")
    return 0 if all(same) else 1
