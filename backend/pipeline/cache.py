"""A per-scene cache of the work that does not depend on the query: the video frames sampled for
the vision-language model, its vision encoder's features of those frames and of key-frame
candidates, the segmenter's per-frame image embeddings, and anything else a pipeline stage
registers with `get_or_compute`.

Bounded in bytes (every entry's arrays and tensors are counted), least recently used dropped
first, with hit / miss / eviction counts. Model outputs are keyed by a digest of the model's
inputs, so a cached value is used only for exactly the same input: results never depend on
whether the cache was warm. Entries are grouped by scene so a scene dropped from the server's
cache takes its work with it.
"""

from __future__ import annotations

import collections
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


def nbytes_of(value: Any) -> int:
    """Bytes held by numpy arrays and torch tensors inside `value` (dicts, lists, tuples, model outputs)."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if hasattr(value, "element_size") and hasattr(value, "nelement"):  # a torch tensor
        return int(value.element_size() * value.nelement())
    if isinstance(value, dict):  # transformers' ModelOutput is a dict too
        return sum(nbytes_of(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(nbytes_of(v) for v in value)
    return 0


def _hasher():
    try:
        import xxhash  # ten times blake2b's speed: a 1024x1024 SAM2 input (12 MB) in about a millisecond

        return xxhash.xxh3_128()
    except ImportError:
        return hashlib.blake2b(digest_size=16)


def digest(*parts: Any) -> str:
    """A content digest of arrays, tensors and plain values (what a cached model saw)."""
    h = _hasher()
    for part in parts:
        if hasattr(part, "detach"):  # torch tensor, any dtype (bfloat16 has no numpy twin: hash its bytes)
            h.update(f"{part.dtype}{tuple(part.shape)}".encode())
            part = part.detach().contiguous().cpu().reshape(-1).view(__import__("torch").uint8).numpy()
        if isinstance(part, np.ndarray):
            h.update(f"{part.dtype}{part.shape}".encode())
            h.update(np.ascontiguousarray(part).data)
        else:
            h.update(repr(part).encode())
    return h.hexdigest()


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    nbytes: int = 0
    entries: int = 0


class SceneWorkCache:
    """Query-independent work, LRU within `max_bytes` (0 disables caching)."""

    def __init__(self, max_bytes: int = 2 << 30):
        self.max_bytes = int(max_bytes)
        self._entries: collections.OrderedDict[tuple[str, str, str], tuple[Any, int]] = collections.OrderedDict()
        self._lock = threading.RLock()
        self._local = threading.local()
        self.stats = CacheStats()

    # ---- which scene the running query is about ------------------------------------------------
    def for_scene(self, scene_key: str) -> _SceneScope:
        """`with cache.for_scene(key):` entries made inside belong to that scene."""
        return _SceneScope(self, scene_key)

    @property
    def scene(self) -> str:
        return getattr(self._local, "scene", "")

    # ---- entries -------------------------------------------------------------------------------
    def get_or_compute(self, name: str, key: str, compute: Callable[[], Any], scene: str | None = None) -> Any:
        """The value stored under (scene, name, key), computing and storing it on a miss."""
        entry = (self.scene if scene is None else scene, name, key)
        with self._lock:
            if entry in self._entries:
                self._entries.move_to_end(entry)
                self.stats.hits += 1
                return self._entries[entry][0]
            self.stats.misses += 1
        value = compute()  # outside the lock: a long model call must not block other threads
        self.put(entry, value)
        return value

    def put(self, entry: tuple[str, str, str], value: Any) -> None:
        size = nbytes_of(value)
        with self._lock:
            if size > self.max_bytes:
                return  # larger than the whole budget: computed, used, never kept
            if entry in self._entries:
                self.stats.nbytes -= self._entries.pop(entry)[1]
            self._entries[entry] = (value, size)
            self.stats.nbytes += size
            while self.stats.nbytes > self.max_bytes and self._entries:
                _, (_, dropped) = self._entries.popitem(last=False)
                self.stats.nbytes -= dropped
                self.stats.evictions += 1
            self.stats.entries = len(self._entries)

    def drop_scene(self, scene_key: str) -> None:
        with self._lock:
            for entry in [e for e in self._entries if e[0] == scene_key]:
                self.stats.nbytes -= self._entries.pop(entry)[1]
            self.stats.entries = len(self._entries)

    def shrink_to(self, max_bytes: int) -> None:
        """Drop least recently used entries until at most `max_bytes` are held."""
        with self._lock:
            while self.stats.nbytes > max_bytes and self._entries:
                _, (_, dropped) = self._entries.popitem(last=False)
                self.stats.nbytes -= dropped
                self.stats.evictions += 1
            self.stats.entries = len(self._entries)

    def names(self) -> collections.Counter:
        with self._lock:
            return collections.Counter(name for _, name, _ in self._entries)

    # ---- model encoders ------------------------------------------------------------------------
    def wrap_encoder(self, module, name: str) -> None:
        """Serve `module`'s forward from the cache for inputs it has seen (same tensors, same
        arguments). Each call gets its own shallow copy of a model output, so a caller that
        replaces a field (Qwen's get_image_features splits pooler_output) leaves the cache as it was."""
        if getattr(module, "_scene_cache_wrapped", False):
            return
        forward = module.forward

        def cached_forward(*args, **kwargs):
            key = digest(*_flat(args), *_flat(sorted(kwargs.items(), key=lambda item: item[0])))
            return _shallow_copy(self.get_or_compute(name, key, lambda: forward(*args, **kwargs)))

        module.forward = cached_forward
        module._scene_cache_wrapped = True

    def wrap_method(self, owner, method: str, name: str) -> None:
        """The same for a plain method (an image processor's `preprocess`)."""
        if getattr(owner, f"_scene_cache_{method}", False):
            return
        original = getattr(owner, method)

        def cached(*args, **kwargs):
            key = digest(*_flat(args), *_flat(sorted(kwargs.items(), key=lambda item: item[0])))
            return _shallow_copy(self.get_or_compute(name, key, lambda: original(*args, **kwargs)))

        setattr(owner, method, cached)
        setattr(owner, f"_scene_cache_{method}", True)


def _flat(values) -> list:
    """Arrays, tensors and plain values inside nested lists, tuples and dicts, in order."""
    out = []
    for value in values:
        if isinstance(value, dict):
            out += _flat(sorted(value.items(), key=lambda item: str(item[0])))
        elif isinstance(value, (list, tuple)):
            out += [f"<{len(value)}>"] + _flat(value)
        else:
            out.append(value)
    return out


class _SceneScope:
    def __init__(self, cache: SceneWorkCache, scene_key: str):
        self.cache, self.scene_key = cache, scene_key

    def __enter__(self):
        self.previous = self.cache.scene
        self.cache._local.scene = self.scene_key
        return self.cache

    def __exit__(self, *exc):
        self.cache._local.scene = self.previous
        return False


def _shallow_copy(value: Any) -> Any:
    if isinstance(value, dict):
        if isinstance(getattr(value, "data", None), dict):  # transformers' BatchFeature
            return type(value)(dict(value.data))
        try:
            return type(value)(**value)  # a ModelOutput
        except TypeError:
            return dict(value)
    if isinstance(value, list):
        return list(value)
    return value


def scene_key(scene) -> str:
    """The cache's name for a scene: the server's content hash when it set one, else the
    scene's identity in this process."""
    return getattr(scene, "cache_key", None) or f"{scene.name}@{id(scene):x}"


def cache_reasoner_work(cache: SceneWorkCache, reasoner) -> None:
    """Query-independent work of the vision-language model, served from the cache: the video
    frames sampled from a scene, the processor's resized pixels, the vision encoder's features."""
    if getattr(reasoner, "_scene_cache_video_of", False):
        return
    sample = reasoner.video_of
    reasoner.video_of = lambda scene: cache.get_or_compute(
        "video-frames", str(reasoner.settings.video_frames), lambda: sample(scene)
    )
    reasoner._scene_cache_video_of = True
    for processor in (
        getattr(reasoner.processor, "image_processor", None),
        getattr(reasoner.processor, "video_processor", None),
    ):
        if processor is not None and hasattr(processor, "preprocess"):
            cache.wrap_method(processor, "preprocess", f"vlm-pixels/{type(processor).__name__}")
    visual = getattr(getattr(reasoner.model, "model", None), "visual", None)
    if visual is not None:
        cache.wrap_encoder(visual, "vlm-vision-features")


def cache_tracker_work(cache: SceneWorkCache, tracker) -> None:
    """The segmenter's per-frame image embeddings (SAM2's vision encoder), served from the cache."""
    model = getattr(tracker, "model", None)
    encoder = getattr(model, "vision_encoder", None)
    if encoder is not None:
        cache.wrap_encoder(encoder, "segmenter-image-embeddings")
    if hasattr(model, "set_frame") and hasattr(model, "cache"):  # MobileSAM: embeddings by get_or_compute
        model.cache = cache
