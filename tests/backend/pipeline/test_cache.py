"""The per-scene cache of query-independent work: bounded, least recently used first, counted,
and never changing an answer."""

import numpy as np
import pytest
import torch

from scene_r1.backend.pipeline.cache import SceneWorkCache, digest, nbytes_of


def test_entries_are_counted_in_bytes_and_the_least_recently_used_go_first():
    cache = SceneWorkCache(max_bytes=3000)
    with cache.for_scene("a"):
        for name in ("one", "two", "three"):
            cache.get_or_compute("frames", name, lambda: np.zeros(1000, np.uint8))
        assert cache.stats.nbytes == 3000 and cache.stats.misses == 3
        cache.get_or_compute("frames", "one", lambda: pytest.fail("cached"))  # a hit makes "one" recent
        cache.get_or_compute("frames", "four", lambda: np.zeros(1000, np.uint8))
    assert cache.stats.hits == 1 and cache.stats.evictions == 1 and cache.stats.nbytes == 3000
    with cache.for_scene("a"):
        calls = []
        cache.get_or_compute("frames", "two", lambda: calls.append(1) or np.zeros(10, np.uint8))
        assert calls == [1]  # "two" was the least recently used one
        cache.get_or_compute("frames", "too big", lambda: np.zeros(5000, np.uint8))
    assert cache.stats.nbytes <= 3000 and ("a", "frames", "too big") not in cache._entries


def test_scenes_are_kept_apart_and_dropped_with_their_work():
    cache = SceneWorkCache(max_bytes=10_000)
    with cache.for_scene("a"):
        cache.get_or_compute("video", "8", lambda: np.ones(100))
    with cache.for_scene("b"):
        assert cache.get_or_compute("video", "8", lambda: np.zeros(100)).sum() == 0
    cache.drop_scene("a")
    assert cache.stats.entries == 1 and cache.stats.nbytes == 800
    cache.shrink_to(0)
    assert cache.stats.entries == 0 and cache.stats.nbytes == 0


def test_sizes_and_digests():
    assert nbytes_of({"a": np.zeros(10), "b": [torch.zeros(4, dtype=torch.float16), "text"]}) == 88
    x = torch.arange(6.0)
    assert digest(x) == digest(x.clone()) != digest(x + 1)
    assert digest(x) != digest(x.reshape(2, 3))


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)
        self.calls = 0

    def forward(self, pixels, grid=None):
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        self.calls += 1
        return BaseModelOutputWithPooling(
            last_hidden_state=self.linear(pixels), pooler_output=self.linear(pixels).sum(0)
        )


def test_a_wrapped_encoder_runs_once_per_distinct_input_and_callers_cannot_spoil_the_cache():
    cache, encoder = SceneWorkCache(), Encoder()
    cache.wrap_encoder(encoder, "features")
    pixels = torch.randn(5, 4)
    with torch.no_grad(), cache.for_scene("s"):
        first = encoder(pixels, grid=torch.tensor([1, 5]))
        first.pooler_output = "replaced by the caller"  # as Qwen's get_image_features does
        again = encoder(pixels.clone(), grid=torch.tensor([1, 5]))
        other = encoder(pixels, grid=torch.tensor([5, 1]))
    assert encoder.calls == 2 and cache.stats.hits == 1
    assert torch.equal(again.last_hidden_state, encoder.linear(pixels)) and torch.is_tensor(again.pooler_output)
    assert other is not again


def test_same_answers_cold_and_warm(tiny_models, synthetic):
    from scene_r1.backend.pipeline.pipeline import Pipeline
    from scene_r1.backend.pipeline.settings import PipelineSettings

    settings = PipelineSettings(
        vlm=str(tiny_models["vlm"]),
        tracker=str(tiny_models["tracker"]),
        dtype="float32",
        max_new_tokens=16,
        video_frames=8,
    )
    scene = synthetic.scene

    def answers(result):
        out = result.to_json()
        return (
            out.get("span"),
            out.get("key_frame"),
            out.get("box_3d"),
            out.get("answer"),
            [s.get("raw") for s in out["stages"].values()],
        )

    warm = Pipeline(settings)
    warm.ground(scene, "the large cube")
    warm.ask(scene, "How many chairs are there?")
    warm_ground, warm_ask = warm.ground(scene, "the white table"), warm.ask(scene, "What colour is the cube?")
    names = warm.cache.names()
    assert warm.cache.stats.hits > 0
    assert {"video-frames", "vlm-vision-features", "segmenter-image-embeddings"} <= set(names)
    cold = Pipeline(settings)
    assert answers(cold.ground(scene, "the white table")) == answers(warm_ground)
    assert answers(cold.ask(scene, "What colour is the cube?")) == answers(warm_ask)


def test_the_servers_budget_counts_the_work_and_drops_it_with_its_scene():
    from scene_r1.backend.service.cache import SceneCache
    from scene_r1.shared.camera import Intrinsics
    from scene_r1.shared.scene import Scene

    def scene():
        return Scene.from_arrays(
            [np.zeros((4, 4, 3), np.uint8)],
            [np.ones((4, 4), np.float32)],
            Intrinsics(4, 4, 2, 2, 4, 4),
            np.eye(4)[None],
            [0.0],
        )

    scenes = SceneCache(max_bytes=10_000)
    scenes.work = SceneWorkCache(max_bytes=10_000)
    scenes.put("a", scene(), 1000)
    with scenes.work.for_scene("a"):
        scenes.work.get_or_compute("features", "f", lambda: np.zeros(6000, np.uint8))
    assert scenes.total_bytes() == 7000
    scenes.put("b", scene(), 4000)  # 11,000 > 10,000: the least recently used scene goes, with its work
    assert scenes.get("a") is None and scenes.work.stats.nbytes == 0 and scenes.total_bytes() == 4000
    with scenes.work.for_scene("b"):
        scenes.work.get_or_compute("features", "g", lambda: np.zeros(5000, np.uint8))
        scenes.work.get_or_compute("features", "h", lambda: np.zeros(5000, np.uint8))
    scenes.put("b", scene(), 4000)  # one scene left, no results: its work is trimmed to fit
    assert scenes.total_bytes() <= 10_000 and scenes.get("b") is not None
