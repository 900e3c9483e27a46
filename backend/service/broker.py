"""`scene-r1 broker`: several `serve` workers (on other machines) behind one address.

ZeroMQ's ROUTER/ROUTER broker with worker heartbeats (the Paranoid Pirate pattern, simplified):
clients talk to the frontend exactly as to one server; workers connect their DEALER to the
backend (`scene-r1 serve --broker ADDR`) and report every second which scenes they cache. A
scene's queries go to the worker that holds it; new scenes go to the least busy worker. Only the
JSON header is read (and validated, as the server would) to route; buffers pass through untouched.

With CURVE keys both ports are encrypted; ZAP admits on the frontend only the public keys in
authorized_clients/ and on the worker port only those in authorized_workers/. A worker's reply
reaches a client only when that worker was given that client's request.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from ...shared.defaults import DEFAULT_ADDRESS, DEFAULT_BROKER_BACKEND
from ...shared.protocol import MAX_HEADER_BYTES, MAX_MESSAGE_BYTES, ProtocolError, decode_header, encode_reply
from ...shared.protocol import error_message as error
from ...shared.scene import SceneError
from . import keys
from .transport import RECEIVE_QUEUE
from .validation import validate_heartbeat, validate_request

log = logging.getLogger("scene_r1.broker")
FINAL = ("result", "error", "scene.stored", "scene.has", "hello", "health", "cancel")
MAX_ROUTES = 100_000  # requests in flight through the broker


@dataclass
class Worker:
    identity: bytes
    name: str = ""
    last_seen: float = 0.0
    scenes: set = field(default_factory=set)
    inflight: set = field(default_factory=set)  # (client, request id) routed there and not yet answered
    reported_busy: int = 0


class Broker:
    def __init__(
        self,
        frontend: str = DEFAULT_ADDRESS,
        backend: str = DEFAULT_BROKER_BACKEND,
        expiry_s: float = 3.0,
        curve_keys: Path | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ):
        self.frontend_address, self.backend_address, self.expiry_s = frontend, backend, expiry_s
        self.curve_keys, self.max_message_bytes = curve_keys, max_message_bytes
        self.workers: dict[bytes, Worker] = {}
        # (client identity, request id) -> worker identity: ids are per client, so no client can
        # claim (or be sent) the answer to another's request.
        self.routes: dict[tuple[bytes, str], bytes] = {}
        self.stop_requested = False
        self.endpoints: tuple[str, str] | None = None
        self.dropped = 0  # messages refused or not forwarded (malformed, unrouted, forged)

    def serve(self, ready=None) -> None:
        context = zmq.Context()
        frontend, backend = context.socket(zmq.ROUTER), context.socket(zmq.ROUTER)
        auth = None
        try:
            for socket in (frontend, backend):
                socket.setsockopt(zmq.LINGER, 0)
                socket.setsockopt(zmq.MAXMSGSIZE, self.max_message_bytes + MAX_HEADER_BYTES)
                socket.setsockopt(zmq.RCVHWM, RECEIVE_QUEUE)
            if self.curve_keys is not None:
                auth = self._secure(context, frontend, backend, Path(self.curve_keys))
            frontend.bind(self.frontend_address)
            backend.bind(self.backend_address)
            self.endpoints = tuple(s.getsockopt_string(zmq.LAST_ENDPOINT) for s in (frontend, backend))
            if ready is not None:
                ready.set()
            self._loop(frontend, backend)
        finally:
            frontend.close(linger=0)
            backend.close(linger=0)
            if auth is not None:
                auth.stop()
            context.term()

    def _secure(self, context, frontend, backend, folder: Path):
        public, secret = keys.load_pair(folder, "server")
        allow = {"clients": folder / keys.CLIENTS, "workers": folder / keys.WORKERS}
        auth = keys.start_authenticator(context, allow)
        keys.make_curve_server(frontend, public, secret, "clients")
        keys.make_curve_server(backend, public, secret, "workers")
        return auth

    def _loop(self, frontend, backend) -> None:
        poller = zmq.Poller()
        poller.register(frontend, zmq.POLLIN)
        poller.register(backend, zmq.POLLIN)
        while not self.stop_requested:
            events = dict(poller.poll(50))
            for socket, handle in ((backend, self._from_worker), (frontend, self._from_client)):
                if socket in events:
                    frames = socket.recv_multipart(copy=False)
                    try:
                        handle(frontend, backend, frames)
                    except Exception:  # noqa: BLE001 - whatever one message does, the broker goes on
                        self.dropped += 1
                        log.exception("a message could not be relayed")
            self._expire(frontend)

    def stop(self) -> None:
        self.stop_requested = True

    def _from_worker(self, frontend, backend, frames) -> None:
        if len(frames) < 3:
            self.dropped += 1
            return
        identity, route = frames[0].bytes, frames[1].bytes
        try:
            header = decode_header(frames[2].bytes)
        except ProtocolError as problem:
            self.dropped += 1
            log.warning("worker %r sent a malformed header: %s", identity[:16], problem)
            return
        if route == b"":  # a worker's own control message: the only way to join the pool
            if header["type"] == "worker.heartbeat":
                self._heartbeat(identity, header["payload"])
            return
        worker, key = self.workers.get(identity), (route, header["id"])
        if worker is None or self.routes.get(key) != identity:
            self.dropped += 1  # not this worker's request to answer: never forwarded
            return
        worker.last_seen = time.monotonic()
        if header["type"] in FINAL:
            worker.inflight.discard(key)
            self.routes.pop(key, None)
        if header["type"] == "scene.stored" and isinstance(header["payload"].get("hash"), str):
            worker.scenes.add(header["payload"]["hash"])
        frontend.send_multipart([route] + list(frames[2:]), copy=False)

    def _heartbeat(self, identity: bytes, payload: dict) -> None:
        try:
            name, scenes, busy = validate_heartbeat(payload)
        except ProtocolError as problem:
            self.dropped += 1
            log.warning("worker %r sent a malformed heartbeat: %s", identity[:16], problem)
            return
        worker = self.workers.setdefault(identity, Worker(identity))
        worker.name, worker.scenes, worker.reported_busy = name, scenes, busy
        worker.last_seen = time.monotonic()

    def _from_client(self, frontend, backend, frames) -> None:
        if len(frames) < 2:
            self.dropped += 1
            return
        client = frames[0].bytes
        try:
            header = decode_header(frames[1].bytes)
            if len(header["buffers"]) != len(frames) - 2:
                raise ProtocolError("bad-buffers", f"the header describes {len(header['buffers'])} buffers")
            validate_request(header["type"], header["payload"], {})
        except ProtocolError as problem:
            self.dropped += 1
            self._reply(frontend, client, error(_peek(frames[1]), problem.code, str(problem)))
            return
        request_id, payload = header["id"], header["payload"]
        if (client, request_id) in self.routes:  # its reply could not be told from the first one's
            text = f"request {request_id} is already in flight from this client: every request needs its own id"
            self._reply(frontend, client, error(request_id, "duplicate-id", text))
            return
        worker = self._choose(client, header["type"], payload)
        if worker is None or len(self.routes) >= MAX_ROUTES:
            self._reply(frontend, client, error(request_id, "no-workers", "no Scene-R1 worker is free at this broker"))
            return
        if header["type"] == "scene.upload":
            worker.scenes.add(payload["hash"])  # its next queries follow it there
        worker.inflight.add((client, request_id))
        self.routes[(client, request_id)] = worker.identity
        backend.send_multipart([worker.identity, client] + list(frames[1:]), copy=False)

    def _reply(self, frontend, client: bytes, message) -> None:
        frontend.send_multipart([client] + encode_reply(message))

    def _choose(self, client: bytes, kind, payload: dict) -> Worker | None:
        alive = [w for w in self.workers.values() if time.monotonic() - w.last_seen < self.expiry_s]
        if not alive:
            return None
        if kind == "cancel":
            holder = self.routes.get((client, payload["request"]))
            if holder in self.workers:
                return self.workers[holder]
        scene = payload.get("scene") or payload.get("hash")
        holders = [w for w in alive if scene is not None and scene in w.scenes]
        # Least busy first; among equals the one caching the fewest scenes, so new scenes (and the
        # memory they take) spread over the pool.
        return min(holders or alive, key=lambda w: (len(w.inflight) + w.reported_busy, len(w.scenes), w.name))

    def _expire(self, frontend) -> None:
        now = time.monotonic()
        for identity, worker in list(self.workers.items()):
            if now - worker.last_seen < self.expiry_s:
                continue
            del self.workers[identity]
            for client, request_id in list(worker.inflight):  # their clients hear it now, not at their timeout
                if self.routes.pop((client, request_id), None) is not None:
                    text = f"worker {worker.name or 'unnamed'} stopped answering; send the request again"
                    self._reply(frontend, client, error(request_id, "worker-lost", text))


def _peek(frame) -> str:
    from .dispatch import _peek_id

    return _peek_id([frame])


def check_broker_exposure(frontend: str, backend: str, curve_keys, trusted_network: bool) -> None:
    for address in (frontend, backend):
        if not keys.is_loopback(address) and curve_keys is None and not trusted_network:
            raise SceneError(
                f"refusing to bind {address} without CURVE keys: make keys with `scene-r1 keys DIR` and pass "
                "--curve-keys DIR (clients and workers then need theirs), or bind 127.0.0.1"
            )
