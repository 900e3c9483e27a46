"""The backend service and its client over real ZeroMQ sockets on loopback."""

import os
import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import zmq

from scene_r1.backend.data.synth import SynthConfig, build_synthetic
from scene_r1.backend.data.synth.generate import visible_boxes
from scene_r1.backend.pipeline.pipeline import Pipeline
from scene_r1.backend.pipeline.settings import PipelineSettings
from scene_r1.backend.service.broker import Broker
from scene_r1.backend.service.keys import is_loopback
from scene_r1.backend.service.server import Server, ServerSettings
from scene_r1.shared.client import BackendError, Client, ServerUnavailable
from scene_r1.shared.protocol import Message, ProtocolError, decode, encode
from scene_r1.shared.scene import Scene
from scene_r1.shared.scene_wire import scene_from_wire, scene_to_wire


def small_scene(seed: int, frames: int = 6) -> Scene:
    synthetic = build_synthetic(SynthConfig(seed=seed, frames=frames, width=96, height=72))
    rendered = [synthetic.scene.frame(i) for i in range(frames)]
    return Scene.from_arrays(
        [f.rgb for f in rendered],
        [f.depth for f in rendered],
        synthetic.scene.intrinsics,
        synthetic.scene.poses,
        synthetic.scene.timestamps,
        name=f"room-{seed}",
        cache_frames=frames,
    )


@pytest.fixture(scope="module")
def scenes():
    return [small_scene(seed) for seed in (41, 42, 43, 44)]


def best_box(scene: Scene, seed: int):
    synthetic = build_synthetic(SynthConfig(seed=seed, frames=len(scene), width=96, height=72))
    boxes = [visible_boxes(synthetic.scene.instance(i), 20) for i in range(len(scene))]
    pixels, frame, box = max((b[1], i, b[0]) for i, frame_boxes in enumerate(boxes) for b in frame_boxes.values())
    return frame, box


def wait_until(condition, seconds: float) -> None:
    """Poll `condition` until it holds, failing the test after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"still not true after {seconds} s"
        time.sleep(0.01)


class Running:
    """A Server (or Broker) on its own thread, stopped at the end."""

    def __init__(self, target):
        self.target = target
        self.thread = threading.Thread(target=target.serve, daemon=True)
        self.thread.start()
        if isinstance(target, Server):
            assert target.ready.wait(10)

    def stop(self):
        self.target.stop()
        self.thread.join(10)


@pytest.fixture(scope="module")
def tiny_server(tiny_models):
    pipeline = Pipeline(
        PipelineSettings(
            vlm=str(tiny_models["vlm"]), tracker="geometric", dtype="float32", max_new_tokens=12, video_frames=4
        )
    )
    running = Running(Server(ServerSettings(bind="tcp://127.0.0.1:*"), pipeline=pipeline))
    yield running.target
    running.stop()


def test_a_scene_survives_the_wire_and_tampering_is_caught(scenes):
    meta, arrays = scene_to_wire(scenes[0])
    frames = encode(Message("scene.upload", payload=meta, arrays=arrays))
    back = decode([bytes(f) for f in frames])
    scene = scene_from_wire(back.payload, back.arrays)
    assert len(scene) == len(scenes[0]) and np.allclose(scene.poses, scenes[0].poses)
    assert (scene.frame(3).rgb == scenes[0].frame(3).rgb).all()
    tampered = dict(back.arrays)
    tampered["depth/2"] = tampered["depth/2"] + 1
    with pytest.raises(ProtocolError, match="hash"):
        scene_from_wire(back.payload, tampered)


def test_loopback_rule():
    assert is_loopback("tcp://127.0.0.1:5555") and is_loopback("tcp://localhost:1") and is_loopback("ipc:///tmp/x")
    assert (
        not is_loopback("tcp://0.0.0.0:5555")
        and not is_loopback("tcp://*:5555")
        and not is_loopback("tcp://10.0.0.2:5555")
    )
    with pytest.raises(Exception, match="CURVE"):
        Server(ServerSettings(bind="tcp://0.0.0.0:5599"))


def test_upload_once_then_queries_reuse_the_cached_scene(tiny_server, scenes):
    with Client(tiny_server.endpoint, timeout=30) as client:
        assert client.hello()["protocol"] == 1
        key = client.upload(scenes[0])
        meta, _ = scene_to_wire(scenes[0])
        assert client.upload(wire=(meta, {})) == key  # already held: scene.has alone, no buffers sent
        frame, box = best_box(scenes[0], 41)
        stages = []
        result = client.query(key, "lift", frame=frame, box=list(box), on_progress=lambda p: stages.append(p["stage"]))
        assert {"tracking", "lifting"} <= set(stages)
        mask3d = result.instances[0].mask3d
        assert len(mask3d.points) == len(mask3d.confidence) > 0 and not result.cached
        again = client.query(key, "lift", frame=frame, box=list(box))
        assert again.cached and (again.instances[0].mask3d.points == mask3d.points).all()
        fresh = client.query(key, "lift", frame=frame, box=list(box), no_cache=True)
        assert not fresh.cached and (fresh.instances[0].mask3d.points == mask3d.points).all()
        assert client.health()["cache"]["results"] == 1  # the memo holds the one question once
        assert client.health()["scenes"] == [key]
        centre = [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, 1]
        clicked = client.query(key, "lift", frame=frame, points=[centre])  # a click, no box
        assert len(clicked.instances[0].mask3d.points) > 0 and not clicked.cached


def test_concurrent_clients_each_get_their_own_answers(tiny_server, scenes):
    errors, answers = [], {}

    def ask(scene, seed):
        try:
            with Client(tiny_server.endpoint, timeout=60) as client:
                key = client.upload(scene)
                frame, box = best_box(scene, seed)
                result = client.query(key, "lift", frame=frame, box=list(box))
                answers[scene.name] = (result.scene, result.key_frame, frame)
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=ask, args=(scene, seed)) for scene, seed in zip(scenes, (41, 42, 43, 44))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert len(answers) == 4 and all(
        name == scene_name and key == frame for scene_name, (name, key, frame) in answers.items()
    )


def test_ground_and_ask_through_the_server_with_the_tiny_models(tiny_server, scenes):
    with Client(tiny_server.endpoint, timeout=60) as client:
        key = client.upload(scenes[1])
        result = client.query(key, "ask", "How many cubes are there?")
        assert result.mode == "ask" and "reasoning" in result.stages["answer"]
        job = client.submit(key, "ground", "the large cube")
        result = job.result(60)
        assert result.mode == "ground" and set(result.stages) >= {
            "temporal",
            "image",
            "tracking",
            "lifting",
        }


def test_cancel_stops_a_long_job(tiny_server):
    long_scene = small_scene(45, frames=240)  # long enough that the job is still tracking when the cancel arrives
    with Client(tiny_server.endpoint, timeout=60) as client:
        key = client.upload(long_scene)
        frame, box = best_box(long_scene, 45)
        seen = []
        job = client.submit(key, "lift", on_progress=lambda p: seen.append(p), frame=frame, box=list(box))
        wait_until(lambda: seen, 30)
        started = time.perf_counter()
        job.cancel()
        with pytest.raises(BackendError) as error:
            job.result(30)
        assert error.value.code == "cancelled" and time.perf_counter() - started < 5
        assert client.health()["ok"]  # and the server goes on


def test_bad_requests_get_errors_and_the_server_keeps_serving(tiny_server, scenes):
    with Client(tiny_server.endpoint, timeout=10) as client:
        with pytest.raises(BackendError) as error:
            client.query("0" * 32, "ground", "a chair")
        assert error.value.code == "unknown-scene"
        key = client.upload(scenes[0])
        for mode, text, options, code in (
            ("dance", "x", {}, "bad-payload"),
            ("ground", "  ", {}, "bad-payload"),
            ("lift", "", {"frame": 0, "box": [1, 2]}, "bad-payload"),
            ("lift", "", {"frame": 0, "box": [1, 2, 3, 4], "repeat": 1}, "bad-payload"),
            ("lift", "", {"frame": 0, "box": [1, 2, 3, 4], "points": [[1, 2, 7]]}, "bad-payload"),
            ("lift", "", {"frame": 0, "points": [[1, 2, 0]]}, "bad-payload"),
        ):
            with pytest.raises(ProtocolError) as error:  # refused by the client before anything is sent
                client.query(key, mode, text, **options)
            assert error.value.code == code, (mode, str(error.value))
            payload = {"scene": key, "mode": mode, "text": text, "options": options}
            with pytest.raises(BackendError) as error:  # and by the server when sent as they are
                client.request(Message("query", payload=payload))
            assert error.value.code == code, (mode, str(error.value))
        with pytest.raises(BackendError) as error:  # a frame index past the scene's end
            client.query(key, "lift", frame=99, box=[1, 1, 5, 5])
        assert error.value.code == "bad-query"
        meta, arrays = scene_to_wire(small_scene(47, frames=3))  # a scene the server does not hold yet
        arrays["rgb/0"] = arrays["rgb/0"][:10]
        with pytest.raises(BackendError):
            client.upload(wire=(meta, arrays))
        assert client.health()["ok"]


def test_fuzzed_messages_never_crash_the_server(tiny_server):
    rng = random.Random(7)
    context = zmq.Context.instance()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(tiny_server.endpoint)
    good = encode(Message("health"))
    templates = [
        lambda: [rng.randbytes(rng.randint(0, 64)) for _ in range(rng.randint(1, 4))],
        lambda: [good[0][: rng.randint(0, len(good[0]))]],
        lambda: [
            good[0].replace(
                b'"health"', rng.choice([b'"query"', b'"scene.upload"', b'"cancel"', b'"scene.has"', b"1", b"null"])
            )
        ],
        lambda: [
            b'{"v": 1, "type": "scene.upload", "id": "f", "payload": {"frames": %d, "hash": "x"}, "buffers": []}'
            % rng.randint(-5, 10)
        ],
        lambda: [
            b'{"v": 1, "type": "query", "id": "q", "payload": {"scene": %s, "mode": "%s", "text": %s, "options": %s}}'
            % (
                rng.choice([b"1", b'"abc"', b"null", b"[]"]),
                rng.choice([b"lift", b"ground", b"x"]),
                rng.choice([b'"t"', b"5", b"null"]),
                rng.choice([b"{}", b"[]", b"3"]),
            )
        ],
        lambda: [
            b'{"v": 1, "type": "x", "id": "b", "buffers": [{"name": "a", "dtype": "%s", "shape": %s, "codec": "%s"}]}'
            % (
                rng.choice([b"uint8", b"float32", b"complex128"]),
                rng.choice([b"[4]", b"[-1]", b"[2, 2]", b'"x"', b"[1e9, 1e9]"]),
                rng.choice([b"raw", b"zlib", b"png", b"lz4"]),
            ),
            rng.randbytes(4),
        ],
    ]
    sent = 2000
    for _ in range(sent):
        socket.send_multipart(rng.choice(templates)())
    replies = 0
    deadline = time.monotonic() + 30
    while replies < sent and time.monotonic() < deadline:
        if socket.poll(1000):
            frames = socket.recv_multipart()
            assert decode(frames).type in ("error", "health", "scene.has", "cancel")
            replies += 1
    socket.close()
    assert replies == sent  # every message (a reply is always possible on a DEALER) got an answer
    with Client(tiny_server.endpoint, timeout=10) as client:
        assert client.health()["ok"]


def serve_subprocess(address: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "scene_r1.backend.cli", "serve", "--bind", address, "--tracker", "geometric"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_killed_server_is_reported_within_the_timeout_and_a_restarted_one_serves(tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"
    scene = small_scene(46, frames=160)
    frame, box = best_box(scene, 46)
    server = serve_subprocess(address)
    try:
        with Client(address, timeout=20) as client:
            assert client.health()["ok"]
            key = client.upload(scene)
            seen = []
            job = client.submit(key, "lift", on_progress=lambda p: seen.append(p), frame=frame, box=list(box))
            wait_until(lambda: seen, 30)
            server.send_signal(signal.SIGKILL)
            server.wait(10)
        with Client(address, timeout=2, retries=1) as client:
            started = time.perf_counter()
            with pytest.raises(ServerUnavailable, match=address):
                client.health()
            assert time.perf_counter() - started < 2 + 1  # one deadline over both attempts
        with pytest.raises(ServerUnavailable):
            job.result(30)  # the running job's client hears nothing more and gives up at its timeout
        server = serve_subprocess(address)
        with Client(address, timeout=20) as client:
            assert client.health()["ok"]
            key = client.upload(scene)  # the new process holds nothing: uploaded again, served again
            assert client.query(key, "lift", frame=frame, box=list(box)).mode == "lift"
    finally:
        server.kill()
        server.wait(10)


def test_broker_routes_each_scene_to_the_worker_that_caches_it(scenes):
    broker = Broker("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", expiry_s=2.0)
    ready = threading.Event()
    broker_thread = threading.Thread(target=broker.serve, args=(ready,), daemon=True)
    broker_thread.start()
    assert ready.wait(10)
    frontend, backend = broker.endpoints
    workers = [
        Running(
            Server(
                ServerSettings(
                    broker=backend, name=f"w{i}", keepalive_s=0.2, pipeline=PipelineSettings(tracker="geometric")
                )
            )
        )
        for i in range(3)
    ]
    try:
        wait_until(lambda: len(broker.workers) == 3, 10)
        served_by = {}
        with Client(frontend, timeout=30) as client:
            for scene, seed in zip(scenes[:3], (41, 42, 43)):
                key = client.upload(scene)
                frame, box = best_box(scene, seed)
                names = {client.query(key, "lift", frame=frame, box=list(box), no_cache=True).worker for _ in range(2)}
                assert len(names) == 1  # both queries went to the worker holding the scene
                served_by[key] = names.pop()
                holder = next(w.target for w in workers if w.target.name == served_by[key])
                assert holder.cache.get(key) is not None
            assert len(set(served_by.values())) == 3  # new scenes spread over idle workers
            # a worker that stops is dropped; its scene is uploaded to another one on the next query
            lost = next(w for w in workers if w.target.name == served_by[next(iter(served_by))])
            lost.stop()
            wait_until(lambda: len(broker.workers) == 2, 10)  # dropped once silent for expiry_s
            assert client.health()["ok"]
    finally:
        for worker in workers:
            worker.stop()
        broker.stop()
        broker_thread.join(10)
