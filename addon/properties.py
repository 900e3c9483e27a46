"""The panel's state, stored per scene (so it is saved with the .blend)."""

import bpy


class SceneR1HistoryItem(bpy.types.PropertyGroup):
    query: bpy.props.StringProperty()
    mode: bpy.props.StringProperty()
    answer: bpy.props.StringProperty()
    status: bpy.props.StringProperty()


class SceneR1Point(bpy.types.PropertyGroup):
    """A click prompt of the box query: capture pixels (edge coordinates), label 1 = on the object."""

    x: bpy.props.FloatProperty()
    y: bpy.props.FloatProperty()
    label: bpy.props.IntProperty(min=0, max=1, default=1)


class SceneR1Settings(bpy.types.PropertyGroup):
    query: bpy.props.StringProperty(name="Query", description="What to find, or the question to ask", default="")
    mode: bpy.props.EnumProperty(
        name="Mode",
        items=[
            ("ground", "Find objects", "Find what the sentence means and select it (the scene's own objects)"),
            ("ask", "Ask a question", "Answer a question about the scene, with reasoning"),
            ("lift", "From a box", "Drag a rectangle over the camera view (or click); the object inside is selected"),
        ],
        default="ground",
    )
    capture_source: bpy.props.EnumProperty(
        name="Views",
        items=[
            (
                "AUTO",
                "Camera view + what it sees",
                "The active camera's view, then an orbit around what it sees (or the selection, when there is one)",
            ),
            ("SCENE", "Orbit the scene", "Circle the bounds of all visible meshes"),
            ("SELECTION", "Orbit the selection", "Circle the bounds of the selected objects"),
            ("CAMERA", "Camera animation", "The active camera over the scene's frame range"),
        ],
        default="AUTO",
    )
    frames: bpy.props.IntProperty(name="Frames", default=24, min=2, max=600)
    width: bpy.props.IntProperty(
        name="Width", default=320, min=16, max=4096, description="At most this wide (the camera view keeps its aspect)"
    )
    height: bpy.props.IntProperty(
        name="Height", default=240, min=16, max=4096, description="At most this high (the camera view keeps its aspect)"
    )
    fps: bpy.props.FloatProperty(name="FPS", default=4.0, min=0.1, max=60.0)
    samples: bpy.props.IntProperty(
        name="Samples", default=8, min=1, max=4096, description="Cycles samples per captured frame"
    )
    box: bpy.props.FloatVectorProperty(
        name="Box",
        size=4,
        default=(0, 0, 0, 0),
        description="x1, y1, x2, y2 in pixels of the camera view's capture (From a box; Draw box sets it)",
    )
    click: bpy.props.BoolProperty(
        name="Click", default=False, description="The box stands for a click: the object under its pixel is selected"
    )
    box_frame: bpy.props.IntProperty(name="Box frame", default=0, min=0)
    points: bpy.props.CollectionProperty(type=SceneR1Point)
    scan_path: bpy.props.StringProperty(
        name="Scan folder", default="", description="The last capture folder opened on the backend's machine"
    )
    answer: bpy.props.StringProperty(default="")
    reasoning: bpy.props.StringProperty(default="")
    history: bpy.props.CollectionProperty(type=SceneR1HistoryItem)


class SceneR1Status(bpy.types.PropertyGroup):
    """A running query's state: on the window manager, so it is never saved into the .blend."""

    running: bpy.props.BoolProperty(default=False)
    progress: bpy.props.FloatProperty(name="Progress", subtype="PERCENTAGE", min=0, max=100, default=0)
    stage: bpy.props.StringProperty(default="")
    message: bpy.props.StringProperty(default="")
    covers: bpy.props.StringProperty(default="")  # what the last capture covered, in words


classes = (SceneR1HistoryItem, SceneR1Point, SceneR1Settings, SceneR1Status)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.scene_r1 = bpy.props.PointerProperty(type=SceneR1Settings)
    bpy.types.WindowManager.scene_r1_status = bpy.props.PointerProperty(type=SceneR1Status)


def unregister() -> None:
    del bpy.types.WindowManager.scene_r1_status
    del bpy.types.Scene.scene_r1
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
