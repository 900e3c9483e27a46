"""`scene-r1 broker`: several `serve` workers (on other machines) behind one address.

ZeroMQ's ROUTER/ROUTER broker with worker heartbeats (the Paranoid Pirate pattern, simplified):
clients talk to the frontend exactly as to one server; workers connect their DEALER to the
backend (`scene-r1 serve --broker ADDR`) and report every second which scenes they cache. A
scene's queries go to the worker that holds it; new scenes go to the least busy worker. Only the
JSON header is read to route; frame buffers pass through untouched.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import zmq

from ...shared.defaults import DEFAULT_ADDRESS, DEFAULT_BROKER_BACKEND
from ...shared.protocol import encode, error_message


@dataclass
class Worker:
    identity: bytes
    name: str = ""
    last_seen: float = 0.0
    scenes: set = field(default_factory=set)
    inflight: set = field(default_factory=set)  # request ids routed there and not yet answered
    reported_busy: int = 0


class Broker:
    def __init__(self, frontend: str = DEFAULT_ADDRESS, backend: str = DEFAULT_BROKER_BACKEND, expiry_s: float = 3.0):
        self.frontend_address, self.backend_address, self.expiry_s = frontend, backend, expiry_s
        self.workers: dict[bytes, Worker] = {}
        self.routes: dict[str, tuple[bytes, bytes]] = {}  # request id -> (client identity, worker identity)
        self.stop_requested = False
        self.endpoints: tuple[str, str] | None = None

    def serve(self, ready=None) -> None:
        context = zmq.Context()
        frontend, backend = context.socket(zmq.ROUTER), context.socket(zmq.ROUTER)
        for socket in (frontend, backend):
            socket.setsockopt(zmq.LINGER, 0)
        frontend.bind(self.frontend_address)
        backend.bind(self.backend_address)
        self.endpoints = (frontend.getsockopt_string(zmq.LAST_ENDPOINT), backend.getsockopt_string(zmq.LAST_ENDPOINT))
        if ready is not None:
            ready.set()
        poller = zmq.Poller()
        poller.register(frontend, zmq.POLLIN)
        poller.register(backend, zmq.POLLIN)
        try:
            while not self.stop_requested:
                events = dict(poller.poll(50))
                if backend in events:
                    self._from_worker(frontend, backend.recv_multipart(copy=False))
                if frontend in events:
                    self._from_client(frontend, backend, frontend.recv_multipart(copy=False))
                self._expire(frontend)
        finally:
            frontend.close(linger=0)
            backend.close(linger=0)
            context.term()

    def stop(self) -> None:
        self.stop_requested = True

    def _from_worker(self, frontend, frames) -> None:
        if len(frames) < 3:
            return
        identity, route = frames[0].bytes, frames[1].bytes
        worker = self.workers.setdefault(identity, Worker(identity))
        worker.last_seen = time.monotonic()
        header = _header(frames[2])
        if route == b"":  # a worker's own control message
            if header and header.get("type") == "worker.heartbeat":
                state = header.get("payload", {})
                worker.name = str(state.get("name", ""))
                worker.scenes = set(state.get("scenes", []))
                worker.reported_busy = int(state.get("busy", 0))
            return
        request_id = header.get("id") if header else None
        if header and header.get("type") in (
            "result",
            "error",
            "scene.stored",
            "scene.has",
            "hello",
            "health",
            "cancel",
        ):
            worker.inflight.discard(request_id)
            self.routes.pop(request_id, None)
        if header and header.get("type") == "scene.stored":
            worker.scenes.add(header.get("payload", {}).get("hash"))
        frontend.send_multipart([route] + list(frames[2:]), copy=False)

    def _from_client(self, frontend, backend, frames) -> None:
        if len(frames) < 2:
            return
        client = frames[0].bytes
        header = _header(frames[1])
        request_id = header.get("id", "unknown") if header else "unknown"
        if header is None:
            frontend.send_multipart(
                [client] + encode(error_message("unknown", "bad-header", "frame 0 is not a JSON header"))
            )
            return
        payload = header.get("payload") if isinstance(header.get("payload"), dict) else {}
        worker = self._choose(header.get("type"), payload)
        if worker is None:
            frontend.send_multipart(
                [client]
                + encode(error_message(str(request_id), "no-workers", "no Scene-R1 worker is connected to this broker"))
            )
            return
        if header.get("type") == "scene.upload":
            worker.scenes.add(payload.get("hash"))  # its next queries follow it there
        worker.inflight.add(request_id)
        self.routes[request_id] = (client, worker.identity)
        backend.send_multipart([worker.identity, client] + list(frames[1:]), copy=False)

    def _choose(self, kind, payload: dict) -> Worker | None:
        alive = [w for w in self.workers.values() if time.monotonic() - w.last_seen < self.expiry_s]
        if not alive:
            return None
        if kind == "cancel":
            route = self.routes.get(payload.get("request"))
            if route is not None and route[1] in self.workers:
                return self.workers[route[1]]
        scene = payload.get("scene") or payload.get("hash")
        holders = [w for w in alive if scene is not None and scene in w.scenes]
        pool = holders or alive
        # Least busy first; among equals the one caching the fewest scenes, so new scenes (and the
        # memory they take) spread over the pool.
        return min(pool, key=lambda w: (len(w.inflight) + w.reported_busy, len(w.scenes), w.name))

    def _expire(self, frontend) -> None:
        now = time.monotonic()
        for identity, worker in list(self.workers.items()):
            if now - worker.last_seen < self.expiry_s:
                continue
            del self.workers[identity]
            for request_id in list(worker.inflight):  # their clients hear it now, not at their timeout
                client, _ = self.routes.pop(request_id, (None, None))
                if client is not None:
                    message = error_message(
                        request_id,
                        "worker-lost",
                        f"worker {worker.name or identity!r} stopped answering; send the request again",
                    )
                    frontend.send_multipart([client] + encode(message))


def _header(frame) -> dict | None:
    try:
        header = json.loads(frame.bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return header if isinstance(header, dict) else None
