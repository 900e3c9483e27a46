"""The broker over real sockets: malformed messages on either port never kill it (the issue's
reproducers and Hypothesis), with CURVE a worker without an allowed key never joins or sees a
scan, and no worker can answer a request it was not given."""

import json
import threading
import time

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scene_r1.backend.pipeline.settings import PipelineSettings
from scene_r1.backend.service.broker import Broker, check_broker_exposure
from scene_r1.backend.service.keys import make_keys
from scene_r1.backend.service.server import Server, ServerSettings
from scene_r1.shared.client import Client, CurveKeys, ServerUnavailable
from scene_r1.shared.protocol import Message, decode, encode
from scene_r1.shared.scene import Scene, SceneError

HASH = "0123456789abcdef" * 2


def wait_until(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"still not true after {seconds} s"
        time.sleep(0.01)


def small_scene(frames: int = 6) -> Scene:
    rgb = [np.full((24, 32, 3), 40 + i, np.uint8) for i in range(frames)]
    depth = [np.full((24, 32), 1.5, np.float32) for _ in range(frames)]
    for d in depth:
        d[6:18, 8:24] = 1.0
    poses = np.tile(np.eye(4), (frames, 1, 1))
    poses[:, 0, 3] = np.arange(frames) * 0.002
    return Scene.from_arrays(rgb, depth, np.tile([30.0, 30, 16, 12], (frames, 1)), poses, np.arange(frames) / 30.0)


class Pool:
    """A broker and workers, each on its own thread, stopped at the end."""

    def __init__(self, curve_keys=None, workers: int = 1, worker_keys=None):
        self.broker = Broker("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", expiry_s=2.0, curve_keys=curve_keys)
        ready = threading.Event()
        self.threads = [threading.Thread(target=self.broker.serve, args=(ready,), daemon=True)]
        self.threads[0].start()
        assert ready.wait(10)
        self.frontend, self.backend = self.broker.endpoints
        self.workers = []
        for i in range(workers):
            settings = ServerSettings(
                broker=self.backend,
                name=f"w{i}",
                keepalive_s=0.2,
                curve_keys=worker_keys or curve_keys,
                pipeline=PipelineSettings(tracker="geometric"),
            )
            self.workers.append(Server(settings))
            self.threads.append(threading.Thread(target=self.workers[-1].serve, daemon=True))
            self.threads[-1].start()

    def stop(self):
        for worker in self.workers:
            worker.stop()
        self.broker.stop()
        for thread in self.threads:
            thread.join(10)


@pytest.fixture(scope="module")
def pool():
    running = Pool()
    wait_until(lambda: len(running.broker.workers) == 1, 10)
    yield running
    running.stop()


def dealer(address: str, curve: CurveKeys | None = None, identity: bytes | None = None):
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    if identity is not None:
        socket.setsockopt(zmq.IDENTITY, identity)
    if curve is not None:
        socket.curve_publickey, socket.curve_secretkey = curve.public, curve.secret
        socket.curve_serverkey = curve.server_public
    socket.connect(address)
    return socket


def raw(kind, payload, id="r1") -> bytes:
    return json.dumps({"v": 1, "type": kind, "id": id, "payload": payload}, allow_nan=True).encode()


# issue 15: 10 of 11 of these killed the broker.
CLIENT_CORPUS = [
    [b'{"v":1,"type":"query","id":["a"],"payload":{}}'],
    [b'{"v":1,"type":"query","id":{"a":1},"payload":{}}'],
    [raw("query", {"scene": [HASH], "mode": "ask", "text": "x"})],
    [raw("scene.has", {"hash": {"a": 1}})],
    [b'{"v":1,"type":"hello","id":"x","payload":' + b"[" * 50_000 + b"]" * 50_000 + b"}"],
    [raw("cancel", {"request": float("nan")})],
    [raw("hello", {}, id="\ud800")],
    [b"\xff"],
    [b""],
    [raw("scene.upload", {"frames": 2, "hash": HASH})],  # declares no buffers, and none follow: refused
]
HEARTBEATS = [
    {"name": "w", "scenes": [], "busy": "x"},
    {"name": "w", "scenes": [[1]], "busy": 0},
    {"name": ["w"], "scenes": [], "busy": 0},
    {"name": "w", "scenes": {"a": 1}, "busy": 0},
    {"name": "w", "scenes": [], "busy": -1},
    {"name": "w", "scenes": [], "busy": 10**30},
]


def test_malformed_client_messages_and_heartbeats_never_kill_the_broker(pool):
    client = dealer(pool.frontend)
    rogue = dealer(pool.backend)
    try:
        for frames in CLIENT_CORPUS:
            client.send_multipart(frames)
        answered = 0
        while answered < len(CLIENT_CORPUS) - 1 and client.poll(5000):  # b"" alone: too short to answer
            assert decode(client.recv_multipart()).type == "error"
            answered += 1
        assert answered >= len(CLIENT_CORPUS) - 1
        for heartbeat in HEARTBEATS:
            rogue.send_multipart([b"", raw("worker.heartbeat", heartbeat)])
        rogue.send_multipart([b"", b'{"v":1,"type":"worker.heartbeat","id":"\\ud800","payload":{}}'])
        rogue.send_multipart([b"x"])
        with Client(pool.frontend, timeout=10) as good:
            assert good.health()["ok"]
        assert len(pool.broker.workers) == 1  # no malformed heartbeat registered a worker
    finally:
        client.close()
        rogue.close()


FUZZ = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@FUZZ
@given(
    port=st.sampled_from(["frontend", "backend"]),
    kind=st.sampled_from(["hello", "health", "scene.has", "query", "cancel", "worker.heartbeat", "result", "x"]),
    request_id=st.text(max_size=10) | st.integers(),
    payload=st.dictionaries(
        st.sampled_from(["scene", "hash", "request", "name", "scenes", "busy", "mode"]), values, max_size=4
    ),
    route=st.binary(max_size=6),
    extra=st.lists(st.binary(max_size=16), max_size=2),
)
def test_fuzzed_messages_on_either_port_never_kill_the_broker(pool, port, kind, request_id, payload, route, extra):
    header = json.dumps({"v": 1, "type": kind, "id": request_id, "payload": payload}).encode()
    socket = pool.fuzz_sockets[port]
    socket.send_multipart(([header] if port == "frontend" else [route, header]) + extra)
    assert pool.threads[0].is_alive()


@pytest.fixture(scope="module", autouse=True)
def fuzz_sockets(pool):
    pool.fuzz_sockets = {"frontend": dealer(pool.frontend), "backend": dealer(pool.backend)}
    yield
    for socket in pool.fuzz_sockets.values():
        socket.close()


def test_after_the_fuzz_a_real_query_is_answered(pool):
    scene = small_scene()
    with Client(pool.frontend, timeout=30) as client:
        key = client.upload(scene)
        result = client.query(key, "lift", frame=0, box=[8, 6, 24, 18])
    assert result.worker == "w0" and result.instances[0].mask3d is not None
    assert pool.threads[0].is_alive() and len(pool.broker.workers) == 1


def test_a_worker_cannot_answer_a_request_it_was_not_given(pool):
    """A connected peer on the worker port (here one without keys on a loopback broker) sends a
    forged result for a client's request: the broker never forwards it."""
    client = dealer(pool.frontend, identity=b"victim")
    forger = dealer(pool.backend)
    try:
        forger.send_multipart([b"", raw("worker.heartbeat", {"name": "forger", "scenes": [], "busy": 0})])
        wait_until(lambda: len(pool.broker.workers) == 2, 10)
        dropped = pool.broker.dropped
        forged = encode(Message("result", "victim-request", {"query": "forged", "mode": "ask", "answer": "42"}))
        forger.send_multipart([b"victim", *forged])
        wait_until(lambda: pool.broker.dropped > dropped, 10)
        assert not client.poll(200)  # nothing came through
    finally:
        forger.close()
        client.close()
        wait_until(lambda: len(pool.broker.workers) == 1, 10)  # the forger expires


def test_a_curve_broker_admits_only_allowed_workers_and_clients(tmp_path):
    make_keys(tmp_path / "keys")
    make_keys(tmp_path / "rogue")
    pool = Pool(curve_keys=tmp_path / "keys")
    rogue_keys = CurveKeys.from_folder(tmp_path / "rogue")
    right = CurveKeys.from_folder(tmp_path / "keys")
    # a rogue worker: its own key pair, the broker's public key; and one that speaks no CURVE at all
    rogues = [
        dealer(pool.backend, CurveKeys(rogue_keys.public, rogue_keys.secret, right.server_public)),
        dealer(pool.backend),
        dealer(pool.backend, right),  # a client's key is not a worker's
    ]
    try:
        for rogue in rogues:
            rogue.send_multipart([b"", raw("worker.heartbeat", {"name": "rogue", "scenes": [], "busy": 0})])
        wait_until(lambda: len(pool.broker.workers) == 1, 10)
        with Client(pool.frontend, timeout=30, curve=right) as client:
            key = client.upload(small_scene())
            result = client.query(key, "lift", frame=0, box=[8, 6, 24, 18])
        assert result.worker == "w0" and [w.name for w in pool.broker.workers.values()] == ["w0"]
        assert not any(rogue.poll(100) for rogue in rogues)  # no scan, no query ever reached them
        with Client(pool.frontend, timeout=1.5, retries=0) as client, pytest.raises(ServerUnavailable):
            client.health()  # no keys: refused at the handshake
    finally:
        for rogue in rogues:
            rogue.close()
        pool.stop()


def test_a_worker_with_keys_refuses_a_non_loopback_broker_without_them():
    with pytest.raises(SceneError, match="CURVE"):
        Server(ServerSettings(broker="tcp://10.1.2.3:5556"))
    with pytest.raises(SceneError, match="CURVE"):
        check_broker_exposure("tcp://0.0.0.0:5555", "tcp://127.0.0.1:5556", None, trusted_network=False)
    check_broker_exposure("tcp://0.0.0.0:5555", "tcp://0.0.0.0:5556", "keys", trusted_network=False)
