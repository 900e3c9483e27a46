"""Writers of phone apps' export layouts, written from each app's published format (test fixtures
only): a Capture in our conventions -> a folder (or .r3d file) as the app would leave it."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ARKIT_FLIP = np.diag([1.0, -1.0, -1.0, 1.0])  # OpenCV camera axes <-> ARKit's (x right, y up, z back)


@dataclass
class Capture:
    rgb: list[np.ndarray]  # HxWx3 uint8
    depth: list[np.ndarray]  # hxw float32 metres (h, w may be smaller than H, W)
    confidence: list[np.ndarray]  # hxw uint8, ARKit levels 0 / 1 / 2
    k: np.ndarray  # fx, fy, cx, cy of the colour image, OpenCV pixel centres
    poses: np.ndarray  # N x 4 x 4 camera-to-world, OpenCV camera axes
    times: np.ndarray  # seconds

    @property
    def color_size(self):
        return self.rgb[0].shape[1], self.rgb[0].shape[0]

    @property
    def depth_size(self):
        return self.depth[0].shape[1], self.depth[0].shape[0]


def quaternion_xyzw(rotation: np.ndarray) -> list[float]:
    """Unit quaternion (x, y, z, w) of a rotation matrix (Shepperd's method)."""
    m = rotation
    trace = np.trace(m)
    if trace > 0:
        s = 2 * np.sqrt(trace + 1)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2 * np.sqrt(1 + m[i, i] - m[j, j] - m[k, k])
        q = [0.0, 0.0, 0.0, (m[k, j] - m[j, k]) / s]
        q[i], q[j], q[k] = s / 4, (m[j, i] + m[i, j]) / s, (m[k, i] + m[i, k]) / s
    return [float(v) for v in q]


def _jpg(path: Path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 98])


def _mm_png(path: Path, depth: np.ndarray) -> None:
    cv2.imwrite(str(path), np.rint(np.nan_to_num(depth) * 1000).astype(np.uint16))


def write_polycam(capture: Capture, root: Path) -> Path:
    keyframes = root / "keyframes"
    for sub in ("images", "cameras", "depth", "confidence"):
        (keyframes / sub).mkdir(parents=True, exist_ok=True)
    for i, pose in enumerate(capture.poses):
        stamp = 1_000_000 + int(round(capture.times[i] * 1e6))  # integer microseconds, named by it
        arkit = pose @ ARKIT_FLIP
        camera = dict(zip(("fx", "fy", "cx", "cy"), map(float, capture.k)))
        camera |= {"width": capture.color_size[0], "height": capture.color_size[1], "timestamp": stamp}
        camera |= {f"t_{r}{c}": float(arkit[r, c]) for r in range(3) for c in range(4)}
        camera |= {"blur_score": 100.0, "manual_keyframe": False}
        (keyframes / "cameras" / f"{stamp}.json").write_text(json.dumps(camera))
        _jpg(keyframes / "images" / f"{stamp}.jpg", capture.rgb[i])
        _mm_png(keyframes / "depth" / f"{stamp}.png", capture.depth[i])
        levels = np.array([0, 127, 255], np.uint8)[capture.confidence[i]]  # polyform README
        cv2.imwrite(str(keyframes / "confidence" / f"{stamp}.png"), levels)
    (root / "mesh_info.json").write_text("{}")
    return root


def write_stray(capture: Capture, root: Path) -> Path:
    import av

    for sub in ("depth", "confidence"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    width, height = capture.color_size
    with av.open(str(root / "rgb.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=30, options={"crf": "10"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for rgb in capture.rgb:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")))
        container.mux(stream.encode())
    fx, fy, cx, cy = capture.k
    # As DatasetEncoder.writeIntrinsics and OdometryEncoder write them: ", "-separated, no quoting; the
    # quaternion is q_WA * q_AC (q_AC a half turn about x), i.e. the camera in OpenCV's axes.
    matrix = [[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]
    (root / "camera_matrix.csv").write_text("\n".join(", ".join(repr(float(v)) for v in row) for row in matrix))
    lines = ["timestamp, frame, x, y, z, qx, qy, qz, qw"]
    for i, pose in enumerate(capture.poses):
        values = [*pose[:3, 3], *quaternion_xyzw(pose[:3, :3])]
        lines.append(f"{capture.times[i] + 5000.0}, {i:06d}, " + ", ".join(repr(float(v)) for v in values))
        _mm_png(root / "depth" / f"{i:06d}.png", capture.depth[i])
        cv2.imwrite(str(root / "confidence" / f"{i:06d}.png"), capture.confidence[i].astype(np.uint8))
    (root / "odometry.csv").write_text("\n".join(lines) + "\n")
    return root


def write_scanner3d(capture: Capture, root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    fx, fy, cx, cy = capture.k
    for i, pose in enumerate(capture.poses):
        frame = {
            "cameraPoseARFrame": (pose @ ARKIT_FLIP).reshape(-1).tolist(),
            "intrinsics": [fx, 0, cx, 0, fy, cy, 0, 0, 1],
            "time": 812.5 + float(capture.times[i]),
            "frame_index": i,
            "motionQuality": 1,
        }
        (root / f"frame_{i:05d}.json").write_text(json.dumps(frame))
        _jpg(root / f"frame_{i:05d}.jpg", capture.rgb[i])
        _mm_png(root / f"depth_{i:05d}.png", capture.depth[i])
        cv2.imwrite(str(root / f"conf_{i:05d}.png"), capture.confidence[i].astype(np.uint8))
    (root / "info.json").write_text(json.dumps({"device": "test"}))
    return root


def write_r3d(capture: Capture, path: Path) -> Path:
    import lzfse

    fx, fy, cx, cy = capture.k
    (width, height), (dw, dh) = capture.color_size, capture.depth_size
    poses = []
    for pose in capture.poses:
        arkit = pose @ ARKIT_FLIP
        poses.append(quaternion_xyzw(arkit[:3, :3]) + arkit[:3, 3].tolist())
    meta = {
        "w": width,
        "h": height,
        "dw": dw,
        "dh": dh,
        "fps": 60,
        "K": [fx, 0, 0, 0, fy, 0, cx, cy, 1],
        "poses": poses,
        "frameTimestamps": (capture.times + 100.0).tolist(),
        "cameraType": 1,
        "initPose": poses[0],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata", json.dumps(meta))
        for i in range(len(poses)):
            archive.writestr(f"rgbd/{i}.jpg", cv2.imencode(".jpg", capture.rgb[i][..., ::-1])[1].tobytes())
            depth = capture.depth[i].astype(np.float32).copy()
            depth[depth == 0] = np.nan
            archive.writestr(f"rgbd/{i}.depth", lzfse.compress(depth.tobytes()))
            archive.writestr(f"rgbd/{i}.conf", lzfse.compress(capture.confidence[i].astype(np.uint8).tobytes()))
    return path


def write_nerfstudio(capture: Capture, root: Path) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "depth").mkdir(parents=True, exist_ok=True)
    fx, fy, cx, cy = capture.k
    width, height = capture.color_size
    frames = []
    for i, pose in enumerate(capture.poses):
        _jpg(root / "images" / f"frame_{i + 1:05d}.jpg", capture.rgb[i])
        depth = np.where(capture.confidence[i] > 0, capture.depth[i], 0)  # converters drop low confidence
        _mm_png(root / "depth" / f"frame_{i + 1:05d}.png", depth)
        frames.append(
            {
                "file_path": f"images/frame_{i + 1:05d}.jpg",
                "depth_file_path": f"depth/frame_{i + 1:05d}.png",
                "transform_matrix": (pose @ ARKIT_FLIP).tolist(),
            }
        )
    meta = {
        "camera_model": "OPENCV",
        "fl_x": fx,
        "fl_y": fy,
        "cx": cx + 0.5,
        "cy": cy + 0.5,
        "w": width,
        "h": height,
        "k1": 0.0,
        "k2": 0.0,
        "p1": 0.0,
        "p2": 0.0,
        "frames": frames,
    }
    (root / "transforms.json").write_text(json.dumps(meta, indent=1))
    return root


WRITERS = {
    "polycam": write_polycam,
    "stray": write_stray,
    "3dscanner": write_scanner3d,
    "r3d": lambda capture, root: write_r3d(capture, root / "scan.r3d"),
    "nerfstudio": write_nerfstudio,
}
