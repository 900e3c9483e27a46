"""The Blender side (bpy only): preferences, panel, capture, result import.

Talks to the backend only through ..shared's client; never imports torch or ..backend.
"""
import bpy


class SceneR1Preferences(bpy.types.AddonPreferences):
    # The extension's package name (bl_ext.<repo>.scene_r1) is the root package of this one.
    bl_idname = __package__.rpartition(".")[0]

    backend_address: bpy.props.StringProperty(
        name="Backend address",
        description="ZeroMQ address of the Scene-R1 backend (scene-r1 serve)",
        default="tcp://127.0.0.1:5555",
    )

    def draw(self, context):
        self.layout.prop(self, "backend_address")


classes = (SceneR1Preferences,)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
