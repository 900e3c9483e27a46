"""A scan opened by the backend (shared.scan.ScanReply) as Blender data, without bpy: the camera
path as keyframes, the camera's lens and render size, the mesh's buffers, and which recorded frame
the camera shows at a Blender frame. Also the click prompts of a box query (issue 16).

A query while the scene camera is a scan's camera runs on that scan's own recorded RGB-D frames
(named by their hash in the backend's cache): nothing is rendered or uploaded.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ...shared.camera import Intrinsics, opencv_to_blender_pose
from ...shared.client import BackendError
from .selection import plain_words

SCAN_COLLECTION = "Scene-R1 scan"
SENSOR_WIDTH_MM = 36.0
MAX_POINTS = 64  # click prompts per query (the protocol's limit for option points)


@dataclass
class RecordedScan:
    """What a query on a scan "captures": nothing, only the hash of the frames the backend holds.
    (The query runner uploads `scene` unless `scene_hash` names frames the backend has already.)"""

    scene_hash: str
    scene: None = None
    object_index: list = field(default_factory=list)
    object_names: list = field(default_factory=list)


def recorded_frames(scene_hash: str):
    """The query runner's `frames` generator for a scan: no frame to capture, the hash at once."""
    return RecordedScan(scene_hash)
    yield  # never reached: makes this a generator whose first next() stops with the scan


def scan_fps(timestamps: np.ndarray) -> int:
    """Blender's scene frame rate for the recording (one Blender frame per recorded frame)."""
    timestamps = np.asarray(timestamps, float)
    if len(timestamps) < 2 or timestamps[-1] <= timestamps[0]:
        return 30
    return int(min(240, max(1, round((len(timestamps) - 1) / (timestamps[-1] - timestamps[0])))))


def camera_settings(intrinsics, color_size: tuple[int, int]) -> dict:
    """The Blender camera (horizontal fit, 36 mm sensor) and render size that see what the recording's
    first frame saw: the inverse of shared.camera.intrinsics_from_blender. Non-square pixels (fx != fy)
    become Blender's pixel aspect."""
    fx, fy, cx, cy = (float(v) for v in np.asarray(intrinsics, float).reshape(-1, 4)[0])
    width, height = int(color_size[0]), int(color_size[1])
    Intrinsics(fx, fy, cx, cy, width, height)  # CameraError on a camera that cannot exist
    aspect = fx / fy  # pixel_aspect_y / pixel_aspect_x in Blender's terms
    return {
        "sensor_fit": "HORIZONTAL",
        "sensor_width": SENSOR_WIDTH_MM,
        "lens": fx * SENSOR_WIDTH_MM / width,
        "shift_x": (width / 2.0 - 0.5 - cx) / width,
        "shift_y": (cy + 0.5 - height / 2.0) * aspect / width,
        "resolution_x": width,
        "resolution_y": height,
        "pixel_aspect_x": 1.0 if aspect >= 1 else 1.0 / aspect,
        "pixel_aspect_y": aspect if aspect >= 1 else 1.0,
    }


def camera_keyframes(poses: np.ndarray, frame_start: int = 1) -> dict[str, np.ndarray]:
    """The recorded OpenCV camera-to-world poses as Blender keyframes, one Blender frame per recorded
    frame: {"frames": (N,), "location": (N, 3), "rotation_quaternion": (N, 4) w, x, y, z}. Quaternion
    signs are kept continuous so the interpolation between keys never turns the long way round."""
    matrices = np.array([opencv_to_blender_pose(p) for p in np.asarray(poses, float)])
    quaternions = np.array([_quaternion(m[:3, :3]) for m in matrices])
    for i in range(1, len(quaternions)):
        if np.dot(quaternions[i], quaternions[i - 1]) < 0:
            quaternions[i] = -quaternions[i]
    return {
        "frames": np.arange(len(matrices), dtype=float) + frame_start,
        "location": matrices[:, :3, 3],
        "rotation_quaternion": quaternions,
    }


def _quaternion(rotation: np.ndarray) -> np.ndarray:
    """(w, x, y, z) of a rotation matrix (Shepperd's method; re-orthonormalised first, since poses
    read from text files carry rounding)."""
    u, _, vt = np.linalg.svd(rotation)
    r = u @ vt
    trace = np.trace(r)
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(1.0 + r[i, i] - r[j, j] - r[k, k])
        q = [0.0] * 4
        q[0] = (r[k, j] - r[j, k]) / s
        q[1 + i], q[1 + j], q[1 + k] = 0.25 * s, (r[j, i] + r[i, j]) / s, (r[k, i] + r[i, k]) / s
    q = np.array(q)
    return q / np.linalg.norm(q)


def quaternion_matrix(q) -> np.ndarray:
    """The rotation matrix of a (w, x, y, z) quaternion (what Blender does with a keyed quaternion)."""
    w, x, y, z = np.asarray(q, float) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def scan_frame_at(scene_frame: int, frame_start: int, frames: int) -> int:
    """The recorded frame the scan's camera shows at a Blender frame, or a ValueError in words."""
    index = int(scene_frame) - int(frame_start)
    if not 0 <= index < frames:
        raise ValueError(
            f"frame {scene_frame} is outside the scan's recording (frames {frame_start} to {frame_start + frames - 1})"
        )
    return index


def mesh_buffers(vertices, triangles, colors) -> dict[str, np.ndarray]:
    """Flat arrays for Blender's foreach_set: vertex positions, loop vertex indices, polygon loop
    starts (all triangles), and per-vertex RGBA colours in 0..1 (sRGB, as recorded)."""
    vertices = np.asarray(vertices, np.float32).reshape(-1, 3)
    triangles = np.asarray(triangles, np.int32).reshape(-1, 3)
    colors = np.asarray(colors).reshape(-1, 3)
    if len(colors) != len(vertices):
        raise ValueError(f"{len(colors)} colours for {len(vertices)} vertices")
    if len(triangles) and (triangles.min() < 0 or triangles.max() >= len(vertices)):
        raise ValueError("the scan's triangles index vertices it does not have")
    rgba = np.ones((len(vertices), 4), np.float32)
    rgba[:, :3] = colors / 255.0 if colors.dtype == np.uint8 else colors
    return {
        "co": vertices.ravel(),
        "vertex_index": triangles.ravel(),
        "loop_start": np.arange(0, 3 * len(triangles), 3, dtype=np.int32),
        "color": rgba.ravel(),
    }


# ---- click prompts ------------------------------------------------------------------------------
class PointClicks:
    """The click-prompt gesture as a small state machine (a modal operator feeds it Blender's
    events): a click adds a positive point, ctrl+click a negative one, Enter / Space / right-click
    runs the query, Backspace removes the last point, Esc cancels."""

    def __init__(self):
        self.pressed = None

    def feed(self, kind: str, value: str, x: float, y: float, ctrl: bool = False):
        """-> None (keep going), "cancel", "done", "undo" or ("point", (x, y), label)."""
        if kind == "ESC" and value == "PRESS":
            return "cancel"
        if kind in {"RET", "NUMPAD_ENTER", "SPACE", "RIGHTMOUSE"} and value == "PRESS":
            return "done"
        if kind == "BACK_SPACE" and value == "PRESS":
            return "undo"
        if kind != "LEFTMOUSE":
            return None
        if value == "PRESS":
            self.pressed = (x, y)
        elif value == "RELEASE" and self.pressed is not None:
            self.pressed = None
            return ("point", (x, y), 0 if ctrl else 1)
        return None


def prompt_point(column: int, row: int, label: int) -> list:
    """A clicked capture pixel as the lift query's [x, y, label]: the pixel's centre in edge
    coordinates (x right, y down, [0, W) spans the image), as the box's numbers are."""
    if label not in (0, 1):
        raise ValueError(f"a point's label is 1 (on the object) or 0 (not on it), got {label!r}")
    return [float(column) + 0.5, float(row) + 0.5, int(label)]


def lift_options(frame: int, box, points) -> dict:
    """The lift query's options from the panel: the box when one is drawn, the clicks as `points`
    ([x, y, label], label 1 on the object, 0 not). A ValueError in words when neither a box nor a
    positive click says where the object is."""
    values = [float(v) for v in box] if box is not None else []
    has_box = (
        len(values) == 4
        and all(math.isfinite(v) for v in values)
        and min(values[2] - values[0], values[3] - values[1]) >= 2
    )
    points = [[float(x), float(y), int(label)] for x, y, label in points]
    if len(points) > MAX_POINTS:
        raise ValueError(f"{len(points)} clicks; a query takes at most {MAX_POINTS}")
    if not has_box and not any(label == 1 for *_, label in points):
        raise ValueError("draw a box over the camera view, or click on the object, first")
    options = {"frame": int(frame)}
    if has_box:
        options["box"] = values
    if points:
        options["points"] = points
    return options


# ---- opening a scan without blocking Blender --------------------------------------------------------
class ScanOpener:
    """`scan.open` on a worker thread; `step()` on the main thread reads its news (progress, the
    reply, or an error in words). `connect` opens a client (shared.client.Client or alike)."""

    WAITING, DONE, FAILED, CANCELLED = "waiting", "done", "failed", "cancelled"

    def __init__(self, path: str, connect, options: dict | None = None, deadline: float = 900.0):
        self.path, self.options, self.deadline = str(path).strip(), dict(options or {}), deadline
        if not self.path:
            raise ValueError("type the capture folder's path on the backend's machine first")
        self.state, self.stage, self.fraction, self.error, self.scan = self.WAITING, "open", 0.0, "", None
        self._events, self._cancel, self._connect = queue.Queue(), threading.Event(), connect
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._open, name="scene-r1-scan", daemon=True)
        self._thread.start()

    @property
    def finished(self) -> bool:
        return self.state != self.WAITING

    def _open(self) -> None:
        def progress(payload):
            self._events.put(("progress", payload))

        try:
            with self._connect() as client:
                scan = client.open_scan(self.path, on_progress=progress, cancel=self._cancel, **self.options)
            self._events.put(("done", scan))
        except BackendError as error:
            self._events.put(("cancelled" if error.code == "cancelled" else "failed", plain_words(error)))
        except Exception as error:  # noqa: BLE001 - reported in Blender, never raised in a thread
            self._events.put(("failed", f"{type(error).__name__}: {plain_words(error)}"))

    def cancel(self) -> None:
        self._cancel.set()

    def step(self) -> None:
        if self.finished:
            return
        if time.monotonic() - self.started > self.deadline:
            self._cancel.set()
            self.state, self.error = self.FAILED, f"the scan was not opened within {self.deadline:g} s; stopped"
            return
        while not self.finished:
            try:
                kind, value = self._events.get_nowait()
            except queue.Empty:
                return
            if kind == "progress":
                self.stage = value.get("stage", self.stage)
                self.fraction = value.get("done", 0) / max(value.get("total", 1), 1)
            elif kind == "done":
                self.scan, self.state = value, self.DONE
            else:
                self.state, self.error = (self.CANCELLED if kind == "cancelled" else self.FAILED), value

    def wait(self, timeout: float | None = None, interval: float = 0.02) -> None:
        """Step until finished (scripts and tests; the UI steps from a timer), within `timeout`."""
        limit = self.deadline if timeout is None else timeout
        end = time.monotonic() + limit
        while not self.finished:
            if time.monotonic() > end:
                self._cancel.set()
                self.state, self.error = self.FAILED, f"the scan was not opened within {limit:g} s; stopped"
                return
            self.step()
            time.sleep(interval)
