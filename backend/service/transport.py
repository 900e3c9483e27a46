"""The server's socket: a ROUTER bound for clients, or a DEALER connected to a broker's worker
port; CURVE encryption and the ZAP allow-list when keys are given. Sending never raises."""

from __future__ import annotations

import logging
from pathlib import Path

import zmq

from ...shared.protocol import MAX_HEADER_BYTES, Message, encode_reply
from . import keys

log = logging.getLogger("scene_r1.service")
RECEIVE_QUEUE = 32  # messages received and not yet handled, at most (ZeroMQ's RCVHWM)


class Transport:
    def __init__(self, bind: str, broker: str | None, curve_keys: Path | None, max_message_bytes: int):
        self.bind, self.broker, self.curve_keys = bind, broker, curve_keys
        self.context = zmq.Context()
        self.auth = None
        self.socket = self.context.socket(zmq.DEALER if broker else zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        # No single frame may exceed a message's buffer budget (plus its header).
        self.socket.setsockopt(zmq.MAXMSGSIZE, max_message_bytes + MAX_HEADER_BYTES)
        self.socket.setsockopt(zmq.SNDHWM, 10_000)
        # Few messages wait here undecoded: a flood is held back in the sender's queue, not our memory.
        self.socket.setsockopt(zmq.RCVHWM, RECEIVE_QUEUE)
        try:
            if curve_keys is not None:
                self._secure(Path(curve_keys))
            if broker:
                self.socket.connect(broker)
                self.endpoint = broker
            else:
                self.socket.bind(bind)
                self.endpoint = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        except BaseException:
            self.close()
            raise

    def _secure(self, folder: Path) -> None:
        if self.broker:  # a worker is the broker's CURVE client, with a key the broker allows
            public, secret = keys.load_pair(folder, "worker")
            keys.make_curve_client(self.socket, public, secret, keys.load_public(folder, "server"))
            return
        public, secret = keys.load_pair(folder, "server")
        self.auth = keys.start_authenticator(self.context, {"clients": folder / keys.CLIENTS})
        keys.make_curve_server(self.socket, public, secret, "clients")

    def poll(self, milliseconds: int) -> bool:
        return bool(self.socket.poll(milliseconds))

    def receive(self) -> tuple[list, list] | None:
        """(routing envelope, message frames): ROUTER [identity, header, ...]; behind a broker
        [client identity, header, ...]. None for a message too short to answer."""
        frames = self.socket.recv_multipart(copy=False)
        if len(frames) < 2:
            return None
        return [frames[0]], frames[1:]

    def send(self, route: list, message: Message) -> None:
        """Never raises: an unencodable reply goes as an error; a gone peer is dropped (ROUTER)."""
        try:
            self.socket.send_multipart(list(route) + encode_reply(message), copy=False, flags=zmq.NOBLOCK)
        except zmq.ZMQError as error:
            log.debug("reply %s dropped: %s", message.id, error)

    def close(self) -> None:
        self.socket.close(linger=0)
        if self.auth is not None:
            self.auth.stop()
        self.context.term()
