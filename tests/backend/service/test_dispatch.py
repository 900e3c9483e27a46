"""The server's dispatch, without sockets: every message, however malformed, gets one reply that
encodes, with a named error code for whatever the client did wrong (never `internal`).
Hypothesis generates the messages; the corpus keeps issue 15's reproducers."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scene_r1.backend.pipeline.settings import PipelineSettings
from scene_r1.backend.service.cache import SceneCache
from scene_r1.backend.service.server import Server, ServerSettings
from scene_r1.shared.protocol import QUERY_MODES, REQUESTS, Message, decode, encode, encode_reply
from scene_r1.shared.scene import Scene
from scene_r1.shared.scene_wire import scene_hash, scene_to_wire

ROUTE = [b"client-1"]
HASH = "0123456789abcdef" * 2


@pytest.fixture(scope="module")
def server():
    settings = ServerSettings(max_message_bytes=1 << 20, max_frames=8, pipeline=PipelineSettings(tracker="geometric"))
    return Server(settings)  # not serving: the dispatcher is called directly


def tiny_scene(frames: int = 2) -> Scene:
    rgb = [np.full((6, 8, 3), 10 * i, np.uint8) for i in range(frames)]
    depth = [np.ones((6, 8), np.float32) for _ in range(frames)]
    return Scene.from_arrays(
        rgb,
        depth,
        np.tile([8.0, 8, 4, 3], (frames, 1)),
        np.tile(np.eye(4), (frames, 1, 1)),
        np.arange(frames, dtype=float),
        name="tiny",
    )


def reply_to(server, frames) -> Message:
    reply = server.dispatcher.handle(ROUTE, frames)
    assert reply is not None
    return decode(encode_reply(reply))  # what the client would get, decoded as it would


def raw(kind, payload, id="r1") -> list:
    return [json.dumps({"v": 1, "type": kind, "id": id, "payload": payload}, allow_nan=True).encode()]


CORPUS = [
    (raw("hello", {}, id="\ud800"), "bad-header"),
    ([b'{"v":1,"type":"hello","id":"\\ud800"}'], "bad-header"),
    ([b'{"v":1,"type":"cancel","id":"x","payload":{"request":NaN}}'], "bad-header"),
    (raw("cancel", {"request": ["a"]}), "bad-payload"),
    (raw("cancel", {"request": "\u00e9t\u00e9"}), "bad-payload"),
    (raw("scene.has", {"hash": {"a": 1}}), "bad-payload"),
    (raw("scene.has", {"hash": "../../etc"}), "bad-payload"),
    (raw("query", {"scene": [HASH], "mode": "ask", "text": "why"}), "bad-payload"),
    (raw("query", {"scene": HASH, "mode": "ask", "text": "\ud800"}), "bad-header"),
    (raw("query", {"scene": HASH, "mode": "ask", "text": "x" * 2001}), "bad-payload"),
    (raw("query", {"scene": HASH, "mode": "lift", "options": {"frame": -1, "box": [1, 2, 3, 4]}}), "bad-payload"),
    (
        raw("query", {"scene": HASH, "mode": "lift", "options": {"frame": 0, "box": [1, 2, 3, 4], "repeat": 1}}),
        "bad-payload",
    ),
    (raw("query", {"scene": HASH, "mode": "ask", "text": "why?"}), "unknown-scene"),
    (raw("health", {"x": 1}), "bad-payload"),
    (raw("dance", {}), "unknown-type"),
    (raw("scene.upload", {"frames": 3}), "bad-scene"),
    (raw("scene.upload", {"frames": 1e9, "hash": HASH}), "bad-scene"),
    (raw("scene.upload", {"frames": 9, "hash": HASH}), "too-large"),
    (raw("scene.upload", {"frames": 1, "hash": HASH}), "bad-scene"),
    ([b'{"v":1,"type":"hello","id":"x","payload":' + b'{"a":' * 40 + b"1" + b"}" * 41], "bad-header"),
    (
        [
            b'{"v":1,"type":"hello","id":"x","buffers":[{"name":"a","dtype":"uint8","shape":[4],"codec":"raw"}]}',
            b"abcd",
        ],
        "bad-buffers",
    ),
]


@pytest.mark.parametrize("frames, code", CORPUS, ids=[f"case{i}" for i in range(len(CORPUS))])
def test_the_reproducers_get_named_errors(server, frames, code):
    reply = reply_to(server, frames)
    assert reply.type == "error" and reply.payload["code"] == code, reply.payload


def test_a_valid_upload_is_stored_and_a_query_accepted(server):
    meta, arrays = scene_to_wire(tiny_scene())
    reply = reply_to(server, encode(Message("scene.upload", "up-1", meta, arrays)))
    assert reply.type == "scene.stored" and reply.payload["hash"] == meta["hash"]
    reply = reply_to(server, encode(Message("scene.has", payload={"hash": meta["hash"]})))
    assert reply.payload["have"] is True
    tampered = dict(arrays, **{"depth/1": arrays["depth/1"] + 1})
    reply = reply_to(server, encode(Message("scene.upload", "up-2", meta, tampered)))
    assert reply.payload["code"] == "bad-scene" and "hash" in reply.payload["message"]
    too_big = {f"rgb/{i}": np.zeros((600, 600, 3), np.uint8) for i in range(2)}  # 2.16 MB > the 1 MiB cap
    reply = reply_to(server, encode(Message("scene.upload", "up-3", meta, too_big)))
    assert reply.payload["code"] == "too-large"


def test_an_upload_with_a_focal_length_of_zero_is_a_bad_scene(server):
    meta, arrays = scene_to_wire(tiny_scene())
    meta["intrinsics"] = [[0.0, 8, 4, 3]] * 2
    meta["hash"] = scene_hash(arrays, {k: v for k, v in meta.items() if k not in ("name", "hash")})
    reply = reply_to(server, encode(Message("scene.upload", "up-4", meta, arrays)))
    assert reply.payload["code"] == "bad-scene" and "focal length" in reply.payload["message"]


def test_the_results_memo_is_bounded_and_counted_in_the_budget():
    cache = SceneCache(max_bytes=10_000)
    scene = tiny_scene()
    cache.put("a" * 32, scene, 4_000)
    for i in range(10):
        cache.put_result("a" * 32, f"q{i}", {"i": i}, {"points/0": np.zeros(250, np.float32)})  # ~1 kB each
    assert cache.total_bytes() <= 10_000 and cache.result("a" * 32, "q9") is not None
    assert cache.result("a" * 32, "q0") is None  # the oldest result went first
    cache.put("b" * 32, scene, 4_000)
    assert cache.total_bytes() <= 10_000 and cache.get("b" * 32) is not None


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from([HASH, "r1", "ground", "lift", "ask"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
payloads = st.one_of(
    st.dictionaries(
        st.sampled_from(["hash", "scene", "mode", "text", "options", "request", "frames", "client"]), values, max_size=5
    ),
    st.fixed_dictionaries(
        {
            "scene": st.sampled_from([HASH, "x"]),
            "mode": st.sampled_from([*QUERY_MODES, "x"]),
            "text": st.text(max_size=5),
            "options": st.dictionaries(st.sampled_from(["frame", "box", "every", "no_cache", "x"]), values, max_size=3),
        }
    ),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    kind=st.sampled_from([*REQUESTS, "result", "worker.heartbeat", "x"]),
    request_id=st.text(max_size=70),
    payload=payloads,
)
def test_dispatch_answers_every_message_with_a_named_code(server, kind, request_id, payload):
    frames = raw(kind, payload, id=request_id)
    reply = reply_to(server, [frames[0].decode("utf-8", "surrogatepass").encode("utf-8", "surrogatepass")])
    assert reply.id in (request_id, "unknown")
    if reply.type == "error":
        assert reply.payload["code"] != "internal", reply.payload


def test_one_client_cannot_queue_more_than_its_share(server):
    from scene_r1.backend.service.jobs import MAX_QUEUED_PER_CLIENT, JobRunner, QueryJob
    from scene_r1.shared.protocol import ProtocolError

    runner = JobRunner(lambda job, progress: ({}, {}))  # threads not started: every job stays queued
    for i in range(MAX_QUEUED_PER_CLIENT):
        runner.submit(QueryJob([b"flood"], f"q{i}", HASH, "ask", "why?", {}))
    with pytest.raises(ProtocolError) as refused:
        runner.submit(QueryJob([b"flood"], "one-more", HASH, "ask", "why?", {}))
    assert refused.value.code == "busy"
    assert runner.submit(QueryJob([b"polite"], "q0", HASH, "ask", "why?", {})) == MAX_QUEUED_PER_CLIENT + 1
