"""The backend's client (ZeroMQ DEALER): what Blender, the Open3D viewer and `scene-r1 query` use.

pyzmq + numpy only, so it runs inside Blender. A Client owns one socket and is used from one
thread at a time; `submit` runs a request on a thread of its own with its own socket and gives
a Job (a concurrent.futures.Future with cancel support).

Timeouts follow ZeroMQ's Lazy Pirate pattern under one deadline: when nothing (not even a
progress event or a keep-alive) arrives within `timeout` seconds, the server is declared
unavailable, with the address in the error. Within that time a small idempotent request is sent
up to 1 + `retries` times, each attempt on a fresh socket with an equal share of what is left.
Sends never block past the deadline either (a DEALER with no peer would block for ever). A server
that has answered a request and then drops the connection (it was stopped, or crashed) is reported
within about CONNECTION_GRACE seconds rather than after the whole silence timeout: a socket monitor sees
the TCP connection close, and the request died with it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.utils.monitor

from .defaults import DEFAULT_ADDRESS
from .protocol import REPLIES, Message, ProtocolError, decode, encode
from .queries import check_query
from .results import QueryResult, result_from_wire
from .scan import ScanReply, check_scan_request, scan_from_wire
from .scene_wire import lossy_colour_wire, scene_to_wire

# Small idempotent requests are re-sent within the deadline. An upload is sent once and given the
# whole deadline: sending it again would cost the whole transfer again (and halve its time).
RESENT = {"hello", "health", "scene.has", "cancel"}
Progress = Callable[[dict], None]
CONNECTION_GRACE = 1.0  # seconds after a dropped connection for what the server sent last to be read
_MONITORS = itertools.count()


class BackendError(RuntimeError):
    """The backend answered with an error (code + a sentence for people)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class ServerUnavailable(BackendError):
    def __init__(self, message: str):
        super().__init__("unavailable", message)


@dataclass(frozen=True)
class CurveKeys:
    """ZeroMQ CURVE keys for a client: its own key pair and the server's public key (z85 bytes)."""

    public: bytes
    secret: bytes
    server_public: bytes

    @classmethod
    def from_folder(cls, folder) -> CurveKeys:
        """The layout `scene-r1 keys DIR` writes: client.key_secret and server.key."""
        import zmq.auth

        folder = Path(folder)
        try:
            public, secret = zmq.auth.load_certificate(folder / "client.key_secret")
            server_public, _ = zmq.auth.load_certificate(folder / "server.key")
        except (OSError, ValueError) as error:
            raise BackendError(
                "keys", f"cannot read CURVE keys in {folder} (expected client.key_secret and server.key): {error}"
            ) from None
        return cls(public, secret, server_public)


class Client:
    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        timeout: float = 30.0,
        retries: int = 2,
        curve: CurveKeys | None = None,
        context: zmq.Context | None = None,
    ):
        self.address, self.timeout, self.retries, self.curve = address, timeout, retries, curve
        self.context = context or zmq.Context.instance()
        self.socket = self._monitor = None
        self._connect()

    def _connect(self) -> None:
        self.close()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        if self.curve is not None:
            self.socket.curve_publickey = self.curve.public
            self.socket.curve_secretkey = self.curve.secret
            self.socket.curve_serverkey = self.curve.server_public
        try:  # a unique address: a socket's fd (pyzmq's default name) may be reused before libzmq lets go
            address = f"inproc://scene-r1-monitor-{id(self):x}-{next(_MONITORS)}"
            self._monitor = self.socket.get_monitor_socket(zmq.EVENT_DISCONNECTED, addr=address)
        except zmq.ZMQError:
            self._monitor = None  # no drop detection: the silence timeout still applies
        self.socket.connect(self.address)

    def close(self) -> None:
        if self._monitor is not None:
            self.socket.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None
        if self.socket is not None:
            self.socket.close(linger=0)
            self.socket = None

    def _connection_events(self) -> list[int]:
        """The connection events (zmq.EVENT_DISCONNECTED) since the last call."""
        events = []
        while self._monitor is not None and self._monitor.poll(0):
            events.append(zmq.utils.monitor.recv_monitor_message(self._monitor)["event"])
        return events

    def _dropped(self, state: dict) -> bool:
        """True CONNECTION_GRACE after the connection to a server that had answered this request
        closed (a server that never answered is left to the timeout, so wrong CURVE keys still say
        so). A reconnect does not save the request: the server's ROUTER gives a new connection a new
        identity, so no reply to it can come back."""
        if zmq.EVENT_DISCONNECTED in self._connection_events():
            state.setdefault("dropped", time.monotonic())
        dropped = state.get("dropped")
        return state.get("heard", False) and dropped is not None and time.monotonic() - dropped > CONNECTION_GRACE

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- the request loop ---------------------------------------------------------------------
    def _send(self, frames: list, deadline: float) -> bool:
        """Queue frames on the socket, waiting for it to be writable until `deadline` at most (a
        DEALER with no connected peer, e.g. a refused CURVE handshake, would block for ever)."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if not self.socket.poll(max(1, int(remaining * 1000)), zmq.POLLOUT):
                continue
            try:
                self.socket.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
                return True
            except zmq.Again:
                continue

    def request(
        self,
        message: Message,
        on_progress: Progress | None = None,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        codec: str = "raw",
        codecs: dict[str, str] | None = None,
    ) -> Message:
        """Send and wait for the final reply, passing progress events to `on_progress`.
        Raises BackendError for error replies, ServerUnavailable when the server stays silent
        for `timeout` seconds: one deadline over every retry, reset only when the server speaks."""
        timeout = self.timeout if timeout is None else timeout
        frames = encode(message, codec=codec, codecs=codecs)
        attempts = 1 + (self.retries if message.type in RESENT else 0)
        deadline = time.monotonic() + timeout  # silence allowed in all, over every attempt
        state = {"cancel_sent": False, "deadline": deadline}
        self._connection_events()  # what happened before this request is not its business
        for attempt in range(attempts):
            # Each attempt gets an equal share of what is left of the silence deadline.
            attempt_deadline = time.monotonic() + (state["deadline"] - time.monotonic()) / (attempts - attempt)
            if self._send(frames, attempt_deadline):
                reply = self._await(message, on_progress, cancel, timeout, attempt_deadline, state)
                if reply is not None:
                    return reply
            self._connect()  # Lazy Pirate: a fresh socket, so a late reply cannot confuse the next request
            if time.monotonic() >= state["deadline"]:
                break
        raise ServerUnavailable(
            f"no answer from the Scene-R1 backend at {self.address} within {timeout:g} s"
            + (f" ({attempts} attempts)" if attempts > 1 else "")
            + ": is `scene-r1 serve` running there"
            + (", and are the CURVE keys the server's?" if self.curve else "?")
        )

    def _await(self, message, on_progress, cancel, timeout, attempt_deadline, state) -> Message | None:
        """The final reply to `message`, or None when this attempt's time ran out."""
        while True:
            if cancel is not None and cancel.is_set() and not state["cancel_sent"]:
                state["cancel_sent"] = True
                cancel_frames = encode(Message("cancel", payload={"request": message.id}))
                self._send(cancel_frames, min(attempt_deadline, time.monotonic() + 1.0))
            wait = min(attempt_deadline - time.monotonic(), 0.1 if cancel is not None or "dropped" in state else 0.5)
            if wait <= 0:
                return None
            if not self.socket.poll(max(1, int(wait * 1000))):
                if self._dropped(state):  # checked only with nothing left to read: a last reply is kept
                    raise ServerUnavailable(
                        f"the Scene-R1 backend at {self.address} closed the connection during the request "
                        "(it was stopped or crashed); nothing of the request was kept"
                    )
                continue
            try:
                reply = decode(self.socket.recv_multipart(copy=False))
            except ProtocolError as error:
                raise BackendError(error.code, f"the backend sent a malformed reply: {error}") from None
            if reply.id != message.id:
                continue  # a reply to an earlier, abandoned request (or to our cancel)
            if reply.type not in REPLIES:
                raise BackendError("malformed", f"the backend sent an unknown reply type {reply.type!r}")
            state["deadline"] = time.monotonic() + timeout  # the server is alive: it resets the clock
            state["heard"] = True
            attempt_deadline = max(attempt_deadline, state["deadline"])
            if reply.type == "progress":
                if on_progress is not None and not reply.payload.get("keepalive"):
                    on_progress(reply.payload)
                continue
            if reply.type == "error":
                raise BackendError(
                    str(reply.payload.get("code", "error")),
                    str(reply.payload.get("message", "the backend reported an error")),
                )
            if reply.type == "accepted":
                continue
            return reply

    # ---- the protocol's requests ----------------------------------------------------------------
    def hello(self) -> dict:
        return self.request(Message("hello", payload={"client": "scene-r1"})).payload

    def health(self, timeout: float | None = None) -> dict:
        return self.request(Message("health"), timeout=timeout).payload

    def upload(
        self, scene=None, wire: tuple[dict, dict] | None = None, codec: str = "raw", timeout: float | None = None
    ) -> str:
        """Make sure the server holds the scene; returns its content hash. A scene the server
        already holds costs one small round trip."""
        meta, arrays = wire if wire is not None else scene_to_wire(scene)
        if codec == "jpeg" and arrays:  # the hash must name the decoded JPEG pixels the server will hold
            meta, arrays = lossy_colour_wire(meta, arrays, codec)
        if self.request(Message("scene.has", payload={"hash": meta["hash"]})).payload.get("have"):
            return meta["hash"]
        codecs = None
        if codec == "jpeg":  # lossy only for colour; depth stays exact
            codecs = {name: ("jpeg" if name.startswith("rgb/") else "zlib") for name in arrays}
        reply = self.request(
            Message("scene.upload", payload=meta, arrays=arrays), timeout=timeout, codec=codec, codecs=codecs
        )
        return reply.payload["hash"]

    def query(
        self,
        scene_hash: str,
        mode: str,
        text: str = "",
        on_progress: Progress | None = None,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
        **options,
    ) -> QueryResult:
        """Run a query on an uploaded scene. mode: ground / ask / lift (options frame=, box=;
        no_cache=True for a fresh run). The query is checked against the protocol's limits
        (shared.queries.check_query) before anything is sent."""
        check_query(mode, text, options)
        payload = {"scene": scene_hash, "mode": mode, "text": text, "options": options}
        reply = self.request(Message("query", payload=payload), on_progress=on_progress, timeout=timeout, cancel=cancel)
        try:
            return result_from_wire(reply.payload, reply.arrays)
        except ValueError as error:
            raise BackendError("malformed", str(error)) from None

    def open_scan(
        self,
        path: str,
        on_progress: Progress | None = None,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
        **options,
    ) -> ScanReply:
        """Have the backend open a capture folder on its own machine (7-Scenes, ScanNet, Record3D, a
        Scene-R1 folder...): the fused mesh, the camera path and the hash that names the scene in
        later queries (nothing is uploaded). Options: voxel (metres), max_triangles, no_cache."""
        payload = {"path": str(path), **options}
        check_scan_request(payload)
        message = Message("scan.open", payload=payload)
        reply = self.request(message, on_progress=on_progress, timeout=timeout, cancel=cancel)
        try:
            return scan_from_wire(reply.payload, reply.arrays)
        except ValueError as error:
            raise BackendError("malformed", str(error)) from None

    def cancel(self, request_id: str) -> bool:
        return bool(self.request(Message("cancel", payload={"request": request_id})).payload.get("found"))

    def submit(self, scene_hash: str, mode: str, text: str = "", on_progress: Progress | None = None, **options) -> Job:
        """The callback/future form: the query runs on its own thread and socket."""
        return Job(self, scene_hash, mode, text, on_progress, options)


class Job(Future):
    """A query running in the background. `cancel()` asks the server to stop it."""

    def __init__(self, client: Client, scene_hash: str, mode: str, text: str, on_progress, options: dict):
        super().__init__()
        self._stop = threading.Event()
        self._args = (client.address, client.timeout, client.retries, client.curve, client.context)
        self._query = (scene_hash, mode, text, on_progress, options)
        self.set_running_or_notify_cancel()
        self._thread = threading.Thread(target=self._run, name="scene-r1-job", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        address, timeout, retries, curve, context = self._args
        scene_hash, mode, text, on_progress, options = self._query
        try:
            with Client(address, timeout, retries, curve, context) as client:
                self.set_result(
                    client.query(scene_hash, mode, text, on_progress=on_progress, cancel=self._stop, **options)
                )
        except BaseException as error:  # delivered to whoever waits on the future
            self.set_exception(error)

    def cancel(self) -> bool:
        """Ask the server to stop; the job then ends with BackendError(code="cancelled")."""
        self._stop.set()
        return True
