"""Hostile and careless messages for `scene-r1 bench security`, in classes: what a fuzzer, an
attacker and a buggy client send. Deterministic for a seed; each message is a list of frames."""

from __future__ import annotations

import json
import random
import struct
import zlib

import numpy as np

HASH = "0123456789abcdef" * 2


def _header(kind, payload=None, id="f1", buffers=None) -> bytes:
    data = {"v": 1, "type": kind, "id": id, "payload": payload if payload is not None else {}}
    if buffers is not None:
        data["buffers"] = buffers
    return json.dumps(data, allow_nan=True).encode("utf-8", "surrogatepass")


def _png_bomb(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    data = zlib.compress(bytes(1 << 16), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", len(data)) + b"IDAT" + data


ZLIB_ZEROS = zlib.compress(bytes(1 << 20), 9)  # 1 KB that inflates to 1 MiB
PNG_BOMB = _png_bomb(20000, 20000)
ODD_VALUES = ["\ud800", "\udfff", float("nan"), float("inf"), -float("inf"), 1e308, ["a"], {"a": 1}, None, True, 2**70]


class Fuzzer:
    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)

    def odd(self):
        return self.rng.choice(ODD_VALUES + ["x" * self.rng.randint(0, 300), self.rng.randint(-5, 5)])

    # ---- classes against a server (or the broker's frontend) --------------------------------
    def random_bytes(self):
        return [self.rng.randbytes(self.rng.randint(0, 96)) for _ in range(self.rng.randint(1, 4))]

    def truncated(self):
        whole = _header("query", {"scene": HASH, "mode": "ask", "text": "how many chairs?"})
        return [whole[: self.rng.randint(0, len(whole) - 1)]]

    def echoed_values(self):
        kind = self.rng.choice(["hello", "health", "cancel", "scene.has", "query"])
        key = {"cancel": "request", "scene.has": "hash", "query": "scene"}.get(kind, "client")
        if self.rng.random() < 0.5:
            return [_header(kind, {key: self.odd()})]
        return [_header(kind, {}, id=self.odd())]

    def nesting(self):
        depth = self.rng.choice([20, 100, 1000, 50_000])
        if self.rng.random() < 0.5:
            return [b'{"v":1,"type":"hello","id":"n","payload":{"a":' + b"[" * depth + b"]" * depth + b"}}"]
        return [b"{" * depth]

    def oversized(self):
        choice = self.rng.randrange(4)
        if choice == 0:  # 4 buffers of 512 MiB declared, 4 KB sent
            buffers = [{"name": f"b{i}", "dtype": "uint8", "shape": [1 << 29], "codec": "zlib"} for i in range(4)]
            return [_header("scene.upload", {"frames": 2, "hash": HASH}, buffers=buffers)] + [ZLIB_ZEROS] * 4
        if choice == 1:  # a 20000x20000 PNG declared as 192x256
            buffers = [{"name": "rgb/0", "dtype": "uint8", "shape": [192, 256, 3], "codec": "png"}]
            return [_header("scene.upload", {"frames": 1, "hash": HASH}, buffers=buffers), PNG_BOMB]
        if choice == 2:  # a shape whose product overflows
            buffers = [{"name": "a", "dtype": "float64", "shape": [1 << 39, 1 << 39, 2, 2], "codec": "raw"}]
            return [_header("scene.upload", {"frames": 1, "hash": HASH}, buffers=buffers), b"x"]
        return [_header("hello", {"a": "x" * (2 << 20)})]  # a 2 MB header

    def buffers_where_none_go(self):
        buffers = [{"name": "a", "dtype": "uint8", "shape": [1024], "codec": "raw"}]
        return [_header(self.rng.choice(["hello", "health", "cancel"]), {}, buffers=buffers), bytes(1024)]

    def bad_query(self):
        options = self.rng.choice(
            [{"repeat": 1}, {"frame": -1, "box": [1, 2, 3, 4]}, {"frame": 0, "box": [1, 2]}, {"every": "yes"}, []]
        )
        mode = self.rng.choice(["ground", "ask", "lift", "dance", None])
        text = self.rng.choice(["", " ", "x" * 3000, "\ud800 mug", "the mug", 5])
        return [
            _header(
                "query", {"scene": self.rng.choice([HASH, "x", None]), "mode": mode, "text": text, "options": options}
            )
        ]

    def careless_upload(self):
        frames = self.rng.randint(1, 3)
        buffers, blobs = [], []
        for i in range(frames):
            for kind, shape, dtype in (("rgb", [8, 8, 3], "uint8"), ("depth", [8, 8], "float32")):
                array = np.zeros(shape, dtype)
                buffers.append({"name": f"{kind}/{i}", "dtype": dtype, "shape": shape, "codec": "raw"})
                blobs.append(array.tobytes())
        meta = {
            "frames": frames,
            "hash": self.rng.choice([HASH, "nothex"]),
            "name": self.odd(),
            "intrinsics": [[8, 8, 4, 4]] * frames,
            "poses": [np.eye(4).tolist()] * frames,
            "timestamps": list(range(frames)),
            "depth_intrinsics": None,
        }
        if self.rng.random() < 0.3:
            meta["poses"] = self.odd()
        return [_header("scene.upload", meta, buffers=buffers), *blobs]

    def valid(self):
        kind = self.rng.choice(["hello", "health", "scene.has", "cancel"])
        payload = {"scene.has": {"hash": HASH}, "cancel": {"request": "nothing-running"}}.get(kind, {})
        return [_header(kind, payload, id=f"ok-{self.rng.randrange(1 << 30):x}")]

    def random_json(self):
        value = self.rng.choice([[], {}, 1, "s", None, {"v": 1}, {"v": 1, "type": 5, "id": "x"}])
        return [json.dumps(value).encode()]

    CLIENT_CLASSES = (
        "random_bytes",
        "truncated",
        "echoed_values",
        "nesting",
        "oversized",
        "buffers_where_none_go",
        "bad_query",
        "careless_upload",
        "valid",
        "random_json",
    )

    def client_message(self) -> tuple[str, list]:
        name = self.rng.choice(self.CLIENT_CLASSES)
        return name, getattr(self, name)()

    # ---- classes against a broker's worker port (a rogue or broken worker) ----------------------
    def worker_message(self) -> tuple[str, list]:
        choice = self.rng.randrange(4)
        if choice == 0:
            beat = {
                "name": self.odd(),
                "scenes": self.rng.choice([[], [[1]], {"a": 1}, [HASH], "x"]),
                "busy": self.odd(),
                "queued": self.odd(),
            }
            return "heartbeat", [b"", _header("worker.heartbeat", beat)]
        if choice == 1:  # a forged answer for a client that never asked this peer
            answer = _header("result", {"answer": "forged"}, id=self.rng.choice(["f1", "ok-1", "\ud800"]))
            return "forged-reply", [self.rng.randbytes(5), answer]
        if choice == 2:
            return "random-bytes", [self.rng.randbytes(self.rng.randint(0, 40)) for _ in range(self.rng.randint(1, 3))]
        return "nesting", [
            b"",
            b'{"v":1,"type":"worker.heartbeat","id":"w","payload":' + b"[" * 40_000 + b"]" * 40_000 + b"}",
        ]
