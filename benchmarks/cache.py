"""`scene-r1 bench cache`: a different query on a scene the server already holds (its
query-independent work cached: sampled frames, the VLM's resized pixels and vision features, the
segmenter's image embeddings) against the first query (upload + query), with the shipped
scene-r1-nano on the CPU; and the same answers from a cold server.

The model is loaded and warmed on another scene first, so "first" is upload + query, not loading.
"""

from __future__ import annotations

import threading
import time

from ..backend.data.synth import SynthConfig, build_synthetic
from ..backend.models.loading import SHIPPED_NANO
from ..backend.pipeline.pipeline import Pipeline
from ..backend.pipeline.settings import PipelineSettings
from ..backend.service.server import Server, ServerSettings
from ..shared.client import Client
from ..shared.scene import Scene

QUERIES = ("ground", "the white table"), ("ground", "the large cube"), ("ask", "How many chairs are there?")


def room(seed: int, frames: int = 24, width: int = 320, height: int = 240) -> Scene:
    synthetic = build_synthetic(SynthConfig(seed=seed, frames=frames, width=width, height=height))
    scene = synthetic.scene
    rendered = [scene.frame(i) for i in range(len(scene))]
    return Scene.from_arrays(
        [f.rgb for f in rendered],
        [f.depth for f in rendered],
        scene.intrinsics,
        scene.poses,
        scene.timestamps,
        name=f"bench-cache-{seed}",
        cache_frames=frames,
    )


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
    """A server on a free loopback port with the shipped nano (geometric tracker), in a thread."""

    def __init__(self):
        settings = PipelineSettings(vlm=str(SHIPPED_NANO), tracker="geometric", video_as_images=True)
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

    def timed(self, scene: Scene, mode: str, text: str) -> tuple[float, dict]:
        start = time.perf_counter()
        key = self.client.upload(scene)
        payload = self.client.query(key, mode, text).to_json()
        return time.perf_counter() - start, payload


def run_cache_benchmark() -> int:
    if not (SHIPPED_NANO / "config.json").is_file():
        print(f"scene-r1 bench cache: the shipped model is not here ({SHIPPED_NANO}); nothing measured")
        return 2
    warm_up, scene = room(7), room(6)
    with _Backend() as backend:
        backend.timed(warm_up, "ground", "the red chair")  # loads and warms the model on another scene
        first, _ = backend.timed(scene, *QUERIES[0])
        warm = [backend.timed(scene, *query) for query in QUERIES[1:]]
        stats = backend.server.pipeline().cache.stats
        names = dict(backend.server.pipeline().cache.names())
    with _Backend() as backend:  # cold: a fresh server, scene and model loaded, nothing cached
        backend.timed(warm_up, "ground", "the red chair")
        cold = [backend.timed(scene, *query) for query in QUERIES[1:]]
    print(
        f"first query (upload + ground {QUERIES[0][1]!r}) on a 24-frame 320x240 scene, "
        f"scene-r1-nano on the CPU: {first:.2f} s"
    )
    for (mode, text), (seconds, payload), (cold_seconds, cold_payload) in zip(QUERIES[1:], warm, cold):
        same = answer_of(payload) == answer_of(cold_payload)
        print(
            f"a different query on the cached scene ({mode} {text!r}): {seconds:.2f} s, "
            f"{first / seconds:.1f}x faster than the first "
            f"(goal >= 5x); on a cold server {cold_seconds:.2f} s; same answer cold and warm: {'yes' if same else 'NO'}"
        )
    print(
        f"work cache: {stats.entries} entries, {stats.nbytes / 1e6:.1f} MB, {stats.hits} hits, {stats.misses} misses, "
        f"{stats.evictions} evictions; {names}"
    )
    return 0 if all(answer_of(w[1]) == answer_of(c[1]) for w, c in zip(warm, cold)) else 1
