"""`scene-r1 bench scan`: a capture folder opened by the backend (`scan.open`: read, hash, fuse,
reply with mesh + camera path) against a client uploading the same frames (what re-rendering or
re-sending costs), both in this run on the same server; then the same folder opened again (known by
its files, not read again) and a capped mesh (decimated)."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from ..backend.data import DEFAULT_REAL, open_scene
from ..backend.data.synth import SynthConfig, write_synthetic
from ..backend.service.server import Server, ServerSettings
from ..shared.client import Client
from ..shared.scene_wire import scene_to_wire


def _timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def _folder(scratch: Path) -> Path:
    if DEFAULT_REAL.is_dir():
        return DEFAULT_REAL
    folder = scratch / "room"
    write_synthetic(SynthConfig(seed=7, frames=40, width=320, height=240), folder)
    return folder


def run_scan_benchmark() -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        folder = _folder(Path(scratch))
        figures = {}
        for label, first in (("upload first", True), ("scan.open first", False)):
            server = Server(ServerSettings(bind="tcp://127.0.0.1:*"))  # a fresh cache for each order
            thread = threading.Thread(target=server.serve, daemon=True)
            thread.start()
            assert server.ready.wait(10)
            try:
                with Client(server.endpoint, timeout=300) as client:
                    steps = [
                        ("upload", lambda: client.upload(wire=scene_to_wire(open_scene(folder)))),
                        ("open", lambda: client.open_scan(str(folder))),
                    ]
                    for name, step in steps if first else steps[::-1]:
                        figures[(label, name)] = _timed(step)
                    figures[(label, "reopen")] = _timed(lambda: client.open_scan(str(folder)))
                    figures[(label, "capped")] = _timed(lambda: client.open_scan(str(folder), max_triangles=20_000))
            finally:
                server.stop()
                thread.join(10)
        return _report(folder, figures)


def _report(folder: Path, figures: dict) -> dict:
    label = "scan.open first"
    scan, opened = figures[(label, "open")]
    _, uploaded = figures[("upload first", "upload")]
    again, reopened = figures[(label, "reopen")]
    capped, capped_s = figures[(label, "capped")]
    print(f"scan {folder}: {scan.frames} frames {scan.color_size[0]}x{scan.color_size[1]}, format {scan.format}")
    print(
        f"  scan.open (read + hash + fuse + mesh back): {opened:.2f} s"
        f" -> {len(scan.vertices):,} vertices, {len(scan.triangles):,} triangles, timings {scan.timings}"
    )
    ratio = opened / uploaded
    print(f"  client reads + uploads the same frames (no mesh): {uploaded:.2f} s; ratio open/upload {ratio:.2f}")
    print(f"  opened again (same files): {reopened:.3f} s (cached={again.cached}); ratio {reopened / opened:.4f}")
    print(
        f"  max_triangles=20000: {len(capped.triangles):,} of {capped.triangles_fused:,} triangles in {capped_s:.2f} s"
    )
    same = figures[("upload first", "open")][0].hash == figures[("upload first", "upload")][0] == scan.hash
    print(f"  the scan's hash is the upload's: {same} (queries on it re-send nothing)")
    return {"open_s": opened, "upload_s": uploaded, "reopen_s": reopened, "same_hash": same}
