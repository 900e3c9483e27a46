"""A query's life over the small tool interface: validation first, a backend that is down reported
before any capture, one overall deadline, a full run against a ZeroMQ peer speaking the protocol."""

import socket
import threading
import time

import numpy as np
import pytest
import zmq

from scene_r1.addon.core.query import Backend, QueryError, QueryRunner, validate_query
from scene_r1.addon.core.selection import plain_words
from scene_r1.shared.camera import Intrinsics, look_at
from scene_r1.shared.protocol import MAX_QUERY_CHARS, Message, decode, encode
from scene_r1.shared.results import Instance, QueryResult, result_to_wire
from scene_r1.shared.scene import Scene


class Capture:
    def __init__(self, scene):
        self.scene = scene


def frames(log: list, count: int = 3):
    """The capture tool: one tiny frame per next(); `log` records what ran and that it was cleaned up."""
    rgbs, depths = [], []
    try:
        for number in range(count):
            log.append(number)
            rgbs.append(np.full((6, 8, 3), number, np.uint8))
            depths.append(np.ones((6, 8), np.float32))
            yield number + 1, count
    finally:
        log.append("restored")
    poses = [look_at(np.array([0.0, -3.0, 1.0 + i]), np.zeros(3)) for i in range(count)]
    return Capture(Scene.from_arrays(rgbs, depths, Intrinsics(8, 8, 3.5, 2.5, 8, 6), poses, np.arange(count) / 4.0))


def free_address() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


def test_queries_are_validated_before_anything_runs():
    assert validate_query("ground", "  the mug  ") == "the mug"
    with pytest.raises(QueryError, match="type a query"):
        validate_query("ground", "   ")
    with pytest.raises(QueryError, match=f"at most {MAX_QUERY_CHARS}"):
        validate_query("ask", "x" * 5000)
    with pytest.raises(QueryError, match="not valid UTF-8 text"):
        validate_query("ground", "mug \ud800")
    with pytest.raises(QueryError, match="query mode must be one of"):
        validate_query("find", "the mug")
    with pytest.raises(QueryError, match="draw a box"):
        validate_query("lift", "", [0, 0, 0, 0])
    assert validate_query("lift", "", [1, 2, 30, 40]) == ""


def test_a_backend_that_is_down_is_reported_before_any_capture():
    log = []
    backend = Backend(free_address(), health_timeout=0.5)
    runner = QueryRunner("ground", "the mug", {}, frames(log), backend)
    runner.wait(timeout=30)
    assert runner.state == runner.FAILED
    assert "did not answer within 0.5 s" in runner.error and backend.address in runner.error
    assert log == []  # the capture never started


def test_one_overall_deadline_stops_the_query_and_restores_the_scene():
    now = [0.0]
    log = []
    with Peer() as peer:
        runner = QueryRunner(
            "ground", "the mug", {}, frames(log, 5), Backend(peer.address, deadline=10.0), clock=lambda: now[0]
        )
        give_up = time.monotonic() + 30
        while runner.state == runner.CHECKING and time.monotonic() < give_up:
            runner.step()
            time.sleep(0.01)
        assert runner.state == runner.CAPTURING
        runner.step()  # one frame captured
        now[0] = 11.0
        runner.step()
    assert runner.state == runner.FAILED and "overall deadline of 10 s" in runner.error
    assert log == [0, "restored"]


class Peer:
    """A ZeroMQ ROUTER answering health, scene.has/upload and query with the protocol's messages
    (the real backend is exercised in tests/blender and tests/backend)."""

    def __init__(self, result: QueryResult | None = None):
        self.address = free_address()
        self.result = result
        self.seen = []
        self._stop = threading.Event()
        self._socket = zmq.Context.instance().socket(zmq.ROUTER)
        self._socket.bind(self.address)
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)
        self._socket.close(linger=0)

    def _serve(self):
        while not self._stop.is_set():
            if not self._socket.poll(50):
                continue
            route, *frames = self._socket.recv_multipart()
            message = decode(frames)
            self.seen.append(message.type)
            if message.type == "health":
                reply = Message("health", message.id, {"ok": True})
            elif message.type == "scene.has":
                reply = Message("scene.has", message.id, {"have": False})
            elif message.type == "scene.upload":
                reply = Message("scene.stored", message.id, {"hash": message.payload["hash"]})
            else:
                self._socket.send_multipart([route, *encode(Message("progress", message.id, {"stage": "image"}))])
                payload, arrays = result_to_wire(self.result)
                reply = Message("result", message.id, payload, arrays)
            self._socket.send_multipart([route, *encode(reply)])


def test_a_query_runs_health_capture_upload_and_query_in_order():
    log = []
    answer = QueryResult("the mug", "s", instances=[Instance("mug", [1, 1, 5, 4])], key_frame=1)
    with Peer(answer) as peer:
        runner = QueryRunner("ground", "the mug", {}, frames(log), Backend(peer.address, timeout=10))
        runner.wait(timeout=30)
    assert runner.state == runner.DONE, runner.error
    assert peer.seen == ["health", "scene.has", "scene.upload", "query"]
    assert log == [0, 1, 2, "restored"] and len(runner.capture.scene) == 3
    assert runner.result.instances[0].box_2d == [1, 1, 5, 4] and runner.result.key_frame == 1


def test_backend_messages_lose_numpy_reprs():
    assert plain_words("no depth in frames [np.int64(0), np.int64(3)] at np.float32(1.5) m") == (
        "no depth in frames [0, 3] at 1.5 m"
    )
