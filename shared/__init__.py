"""What the Blender add-on and the backend both speak: scene model, camera conventions, geometry.

numpy (1.26 or 2.x) and pyzmq only; never bpy, never torch.
"""

from .camera import Intrinsics, blender_to_opencv_pose, intrinsics_from_blender, opencv_to_blender_pose
from .scene import Frame, Scene, SceneError, summarize_scene

__all__ = [
    "Frame",
    "Intrinsics",
    "Scene",
    "SceneError",
    "summarize_scene",
    "blender_to_opencv_pose",
    "intrinsics_from_blender",
    "opencv_to_blender_pose",
]
