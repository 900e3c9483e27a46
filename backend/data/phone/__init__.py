"""Readers for phone scanning apps' exports (Polycam, Stray Scanner, 3D Scanner App, Record3D's
.r3d and EXR + JPG) and nerfstudio's transforms.json; registered beside the other formats in backend/data."""

from ..readers import SceneFormat
from .nerfstudio import is_nerfstudio, open_nerfstudio
from .polycam import is_polycam, open_polycam
from .record3d_exr import is_record3d, open_record3d
from .record3d_r3d import is_r3d, open_r3d
from .scanner3d import is_scanner3d, open_scanner3d
from .stray import is_stray, open_stray

PHONE_FORMATS = {
    f.name: f
    for f in (
        SceneFormat("polycam", "Polycam raw data (keyframes/ images, cameras, depth)", is_polycam, open_polycam),
        SceneFormat("stray", "Stray Scanner (rgb.mp4, depth/, odometry.csv)", is_stray, open_stray),
        SceneFormat(
            "3dscanner", "3D Scanner App all data (frame_N.jpg/.json, depth_N.png)", is_scanner3d, open_scanner3d
        ),
        SceneFormat("r3d", "Record3D .r3d file", is_r3d, open_r3d),
        SceneFormat(
            "record3d", "Record3D EXR+JPG export (metadata.json, rgb/ depth/ or rgbd/)", is_record3d, open_record3d
        ),
        SceneFormat("nerfstudio", "nerfstudio transforms.json with depth_file_path", is_nerfstudio, open_nerfstudio),
    )
}

__all__ = ["PHONE_FORMATS"]
