"""`scene-r1 bench security`: fuzzed messages of every class (benchmarks/fuzz_messages.py) against
a `scene-r1 serve` process, then against a `scene-r1 broker` (its frontend and its worker port)
with a worker behind it. Counts deaths and replies, prints each process's peak RSS during the
fuzz against its idle RSS and the per-message cap, and checks that a real query is answered
correctly afterwards (the same 3D mask as the same lift run in this process)."""

from __future__ import annotations

import collections
import socket
import subprocess
import sys
import time
from contextlib import ExitStack

import numpy as np
import zmq

from ..backend.data.synth import SynthConfig, build_synthetic
from ..backend.data.synth.generate import visible_boxes
from ..backend.pipeline.pipeline import Pipeline
from ..backend.pipeline.settings import PipelineSettings
from ..shared.client import Client, ServerUnavailable
from ..shared.protocol import decode
from .fuzz_messages import Fuzzer

CAP_MB = 64


def _address() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


def _start(*args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "scene_r1.backend.cli", *args]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_healthy(address: str, seconds: float = 120, workers: bool = False) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with Client(address, timeout=2, retries=0) as client:
                if client.health().get("ok"):
                    return
        except (ServerUnavailable, Exception):  # noqa: BLE001 - not up yet (or no worker behind the broker)
            time.sleep(0.2)
    raise RuntimeError(f"nothing healthy at {address} after {seconds} s")


def _memory(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM (peak) in MB from /proc."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                values[line.split(":")[0]] = int(line.split()[1]) / 1024
    return values


def _reset_peak(pid: int) -> bool:
    """Linux resets VmHWM to the current RSS on "5" in clear_refs: the peak then covers the fuzz only."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _fuzz(address: str, messages: list[list], seconds: float = 120) -> int:
    """Send every message; the number of final replies (accepted and progress not counted)."""
    context = zmq.Context.instance()
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(address)
    finals = 0

    def drain(wait_ms: int) -> None:
        nonlocal finals
        while dealer.poll(wait_ms):
            reply = decode(dealer.recv_multipart(copy=False))
            finals += reply.type not in ("accepted", "progress")
            wait_ms = 0

    for frames in messages:
        dealer.send_multipart(frames)
        drain(0)
    deadline = time.monotonic() + seconds
    while finals < len(messages) and time.monotonic() < deadline:
        drain(200)
    dealer.close()
    return finals


def _send_only(address: str, messages: list[list]) -> None:
    dealer = zmq.Context.instance().socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(address)
    for frames in messages:
        dealer.send_multipart(frames)
    time.sleep(0.5)  # let the last frames leave before the socket closes (not a wait for an answer)
    dealer.close()


def _real_query(address: str) -> str:
    """Upload a synthetic room, lift its best-seen object; compare with the same lift run here."""
    synthetic = build_synthetic(SynthConfig(seed=7, frames=12, width=96, height=72))
    scene = synthetic.scene
    boxes = [visible_boxes(scene.instance(i), 20) for i in range(len(scene))]
    _, frame, box = max((b[1], i, b[0]) for i, frame_boxes in enumerate(boxes) for b in frame_boxes.values())
    with Client(address, timeout=60) as client:
        key = client.upload(scene)
        served = client.query(key, "lift", frame=frame, box=[float(v) for v in box], no_cache=True)
    here = Pipeline(PipelineSettings(tracker="geometric")).lift(scene, frame, box)
    a, b = served.instances[0].mask3d, here.instances[0].mask3d
    same = a is not None and len(a.points) == len(b.points) and np.allclose(a.points, b.points, atol=1e-5)
    return (
        f"{'correct' if same else 'WRONG'} ({len(a.points) if a is not None else 0} points, reference {len(b.points)})"
    )


def _report(name: str, process: subprocess.Popen, idle: dict, reset: bool) -> bool:
    alive = process.poll() is None
    peak = _memory(process.pid)["VmHWM"] if alive else float("nan")
    growth = peak - idle["VmRSS"]
    within = growth <= CAP_MB
    print(
        f"  {name}: {'alive' if alive else 'DEAD'}; RSS idle {idle['VmRSS']:.0f} MB, peak during fuzz {peak:.0f} MB "
        f"(+{growth:.0f} MB; per-message cap {CAP_MB} MB: {'within' if within else 'OVER'})"
        + ("" if reset else " [peak not reset: includes start-up]")
    )
    return alive


def run_security_benchmark(messages: int = 10_000, seed: int = 0) -> dict:
    fuzzer = Fuzzer(seed)
    cap = ["--max-message-mb", str(CAP_MB)]
    results = {}
    with ExitStack() as stack:
        server_address = _address()
        server = _start("serve", "--bind", server_address, "--tracker", "geometric", *cap)
        stack.callback(lambda: (server.kill(), server.wait(10)))
        _wait_healthy(server_address)
        drawn = [fuzzer.client_message() for _ in range(messages)]
        classes = collections.Counter(name for name, _ in drawn)
        print(
            f"security: {messages} fuzzed messages against `scene-r1 serve` ({len(classes)} classes: "
            + ", ".join(f"{name} {count}" for name, count in sorted(classes.items()))
            + ")"
        )
        idle, reset = _memory(server.pid), _reset_peak(server.pid)
        started = time.perf_counter()
        replies = _fuzz(server_address, [frames for _, frames in drawn])
        print(f"  {replies} of {messages} answered in {time.perf_counter() - started:.1f} s")
        alive = _report("serve", server, idle, reset)
        results["serve"] = {"deaths": int(not alive), "replies": replies}
        if alive:
            print(f"  afterwards a real lift query: {_real_query(server_address)}")

        frontend, backend = _address(), _address()
        broker = _start("broker", "--frontend", frontend, "--backend", backend)
        stack.callback(lambda: (broker.kill(), broker.wait(10)))
        worker = _start("serve", "--broker", backend, "--tracker", "geometric", *cap)
        stack.callback(lambda: (worker.kill(), worker.wait(10)))
        _wait_healthy(frontend)
        half = messages // 2
        to_clients = [fuzzer.client_message()[1] for _ in range(half)]
        to_workers = [fuzzer.worker_message()[1] for _ in range(messages - half)]
        print(f"security: {half} fuzzed messages at the broker's frontend, {messages - half} at its worker port")
        idles = {p.pid: (_memory(p.pid), _reset_peak(p.pid)) for p in (broker, worker)}
        _send_only(backend, to_workers)
        replies = _fuzz(frontend, to_clients)
        print(f"  {replies} of {half} frontend messages answered")
        alive_broker = _report("broker", broker, *idles[broker.pid])
        alive_worker = _report("worker", worker, *idles[worker.pid])
        results["broker"] = {"deaths": int(not alive_broker) + int(not alive_worker), "replies": replies}
        if alive_broker and alive_worker:
            print(f"  afterwards a real lift query through the broker: {_real_query(frontend)}")
    deaths = sum(r["deaths"] for r in results.values())
    print(f"security: {2 * messages} fuzzed messages in all, {deaths} deaths")
    return results
