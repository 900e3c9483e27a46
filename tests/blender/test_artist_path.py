"""The artist's path at default settings, on a room the add-on was never tuned on (rooms.build_study):
box queries select the scene's own objects, the default capture frames what the camera sees, the
viewport mapping agrees with Blender's own camera frame, and the scripting entry survives a factory
reset. None of this needs a backend: a box over separate objects is answered from the capture's
exact object-index map."""

import tempfile
from pathlib import Path

import bpy
import numpy as np
import pytest
from bpy_extras.object_utils import world_to_camera_view
from conftest import preferences
from mathutils import Vector
from rooms import build_study

import scene_r1
from scene_r1.addon.core.region import region_box_to_frame, region_point_to_pixel
from scene_r1.addon.results import show_highlights_in_renders

ARTIFACTS = Path(tempfile.gettempdir()) / "scene-r1-test-artifacts"


def drawn_box(thing_parts: list[str], size: tuple[int, int]) -> list[float] | None:
    """The box an artist drags around a thing in the camera view: around all its mesh vertices as
    Blender's own camera frame maps them (world_to_camera_view), 2 px loose, clipped to the frame."""
    scene, camera = bpy.context.scene, bpy.context.scene.camera
    depsgraph = bpy.context.evaluated_depsgraph_get()
    points = []
    for name in thing_parts:
        obj = bpy.data.objects[name].evaluated_get(depsgraph)
        points += [world_to_camera_view(scene, camera, obj.matrix_world @ v.co) for v in obj.data.vertices]
    frame = np.array([[p.x, 1.0 - p.y] for p in points if p.z > 0]) * np.array(size)
    low, high = np.clip(frame.min(axis=0) - 2, 0, size), np.clip(frame.max(axis=0) + 2, 0, size)
    return None if (high - low).min() < 3 else [*low.tolist(), *high.tolist()]


def visible_parts(things: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each thing's parts that cover at least 30 pixels of the camera's view (Blender's BVH)."""
    from scene_r1.addon.capture import World, camera_view, scene_meshes

    _, intrinsics, pose = camera_view(bpy.context, bpy.context.scene.scene_r1)
    world = World(bpy.context, scene_meshes(bpy.context))
    counts = np.bincount(world.cast(intrinsics, pose)[1].ravel(), minlength=len(world.names) + 1)
    pixels = {name: int(counts[k]) for k, name in enumerate(world.names, 1)}
    return {thing: [p for p in parts if pixels.get(p, 0) >= 30] for thing, parts in things.items()}


def test_box_queries_at_default_settings_select_each_visible_object(addon):
    things = build_study(bpy.context)
    bpy.ops.object.select_all(action="DESELECT")
    settings = bpy.context.scene.scene_r1
    from scene_r1.addon.capture import camera_view

    size = camera_view(bpy.context, settings)[1].size
    assert size == (320, 180)  # the render's 16:9 inside the default 320x240 limit
    preferences().backend_address = "tcp://127.0.0.1:9"  # nothing listens: a box must not need the backend
    checked = []
    for thing, parts in visible_parts(things).items():
        box = drawn_box(things[thing], size) if parts else None
        if box is None:
            continue
        outcome = scene_r1.run(mode="lift", box=box)
        assert outcome.state == "done", outcome.message
        assert sorted(outcome.selected) == sorted(parts), (thing, box, outcome.message)
        assert bpy.context.view_layer.objects.active.name == thing
        assert bpy.data.objects[thing]["scene_r1_mode"] == "lift"
        checked.append(thing)
    print(f"bpy {bpy.app.version_string}: a box around each of {len(checked)} things selected it: {checked}")
    assert len(checked) >= 7
    # The last result, rendered from the user's camera: the selected object glows in its highlight box.
    scene_r1.run(mode="lift", box=drawn_box(things["Cup"], size))
    assert [o.name for o in bpy.context.selected_objects] == ["Cup"]
    glowing = [o for o in bpy.data.objects if o.get("scene_r1_highlight")]
    assert glowing and all(o.hide_render for o in glowing)  # not in the user's final renders by default
    assert show_highlights_in_renders() == len(glowing)  # the artifact shows them
    render_picture(bpy.context.scene, f"blender-{bpy.app.version_string.split()[0]}-box-cup.png")


def render_picture(scene, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    render = scene.render
    render.engine = "CYCLES"
    scene.cycles.samples, scene.cycles.device = 16, "CPU"
    render.resolution_x, render.resolution_y, render.resolution_percentage = 640, 360, 100
    render.image_settings.file_format = "PNG"
    render.filepath = str(ARTIFACTS / name)
    bpy.ops.render.render(write_still=True)
    path = ARTIFACTS / name
    assert path.stat().st_size > 1000
    print(f"result picture: {path}")
    return path


def test_the_scripting_entry_survives_a_factory_reset(addon):
    things = build_study(bpy.context)
    bpy.ops.wm.save_as_mainfile(filepath=str(Path(tempfile.mkdtemp()) / "study.blend"))
    path = bpy.data.filepath
    bpy.ops.wm.read_factory_settings(use_empty=True)  # turns the extension off
    assert not hasattr(bpy.types.Scene, "scene_r1")
    bpy.ops.wm.open_mainfile(filepath=path)
    size = (320, 180)
    outcome = scene_r1.run(mode="lift", box=drawn_box(things["Globe"], size))
    assert outcome.ok and outcome.selected == ["Globe"], outcome
    assert bpy.ops.scene_r1.run(mode="lift", wait=True) == {"FINISHED"}  # the operator form, same box
    assert [o.name for o in bpy.context.selected_objects] == ["Globe"]
    refused = scene_r1.run("x" * 5000, mode="ground")
    assert refused.state == "failed" and "at most 2000" in refused.message


def test_the_default_capture_frames_what_the_camera_sees(addon):
    """Median pixel area of the visible objects over the capture: the old default (an orbit around
    every visible mesh) against the new one (camera view + orbit around what it sees)."""
    from scene_r1.addon.capture import index_maps, plan_from_settings
    from scene_r1.addon.core.framing import pixel_areas

    things = build_study(bpy.context)
    bpy.ops.object.select_all(action="DESELECT")
    settings = bpy.context.scene.scene_r1
    settings.frames = 8
    figures = {}
    for source in ("SCENE", "AUTO"):
        settings.capture_source = source
        plan = plan_from_settings(bpy.context, settings)
        maps, names = index_maps(bpy.context, plan)
        areas = pixel_areas(maps, names)
        small = [areas[t] for t in things if t != "Desk"]
        figures[source] = (float(np.median(small)), areas["Cup"], plan.intrinsics.size, plan.description)
    before, after = figures["SCENE"], figures["AUTO"]
    print(f"bpy {bpy.app.version_string}, study room, 8 frames:")
    size = f"{before[2][0]}x{before[2][1]}"
    print(f"  before (orbit every mesh, {size}): median object {before[0]:.0f} px, cup {before[1]:.0f} px")
    print(f"  after  ({after[3]}, {after[2][0]}x{after[2][1]}): median object {after[0]:.0f} px, cup {after[1]:.0f} px")
    print(f"  ratio after/before: {after[0] / before[0]:.1f}x (cup {after[1] / max(before[1], 1):.1f}x)")
    assert after[0] > 2 * before[0] and after[1] > before[1]


@pytest.mark.parametrize(
    "resolution, aspect, fit, shift",
    [
        ((1920, 1080), (1, 1), "AUTO", (0, 0)),
        ((1080, 1350), (1, 1), "VERTICAL", (0.1, -0.08)),
        ((720, 576), (16, 15), "HORIZONTAL", (-0.05, 0.12)),
        ((640, 480), (1, 1), "AUTO", (0, 0)),
    ],
)
def test_draw_box_and_click_map_exactly_to_what_blender_frames(addon, resolution, aspect, fit, shift):
    """A box dragged over the camera frame, as Blender itself maps scene points into that frame
    (world_to_camera_view), lands on the same points in the capture. Background bpy has no window,
    so the modal operator cannot be invoked; its gesture state machine is fed the event sequence
    the window manager would send, and the result goes through the operator's own apply_gesture."""
    from scene_r1.addon.capture import camera_view
    from scene_r1.addon.core.selection import object_at
    from scene_r1.addon.viewport import BoxDrag, apply_gesture

    things = build_study(bpy.context)
    scene = bpy.context.scene
    render, data = scene.render, scene.camera.data
    render.resolution_x, render.resolution_y = resolution
    render.pixel_aspect_x, render.pixel_aspect_y = aspect
    data.sensor_fit, (data.shift_x, data.shift_y) = fit, shift
    settings = scene.scene_r1
    at_render, at_capture, pose = camera_view(bpy.context, settings)
    corners = [
        (100.0, 50.0),
        (900.0, 50.0),
        (900.0, 50.0 + 800.0 * _frame_ratio(render)),
        (100.0, 50.0 + 800.0 * _frame_ratio(render)),
    ]
    low, high = np.array(corners[0]), np.array(corners[2])
    monitor = bpy.data.objects["Monitor"].matrix_world.translation
    points = [monitor + Vector(v) for v in ((-0.25, 0, 0.12), (0.2, 0, -0.15))]
    region = []
    for point in points:
        frame = world_to_camera_view(scene, scene.camera, point)  # Blender's own frame fractions (y up)
        region.append(tuple(low + np.array([frame.x, frame.y]) * (high - low)))
    expected = []
    for point in points:
        camera_space = np.linalg.inv(pose) @ np.append(np.array(point), 1.0)
        x, y, z = camera_space[:3]
        expected.append([x / z * at_capture.fx + at_capture.cx + 0.5, y / z * at_capture.fy + at_capture.cy + 0.5])
    expected = np.array(expected)
    box = region_box_to_frame(region[0], region[1], corners, at_render, at_capture)
    assert box == pytest.approx([*expected.min(axis=0), *expected.max(axis=0)], abs=1e-3)
    drag = BoxDrag()
    assert drag.feed("MOUSEMOVE", "NOTHING", *region[0]) is None and drag.feed("LEFTMOUSE", "PRESS", *region[0]) is None
    gesture = drag.feed("LEFTMOUSE", "RELEASE", *region[1])
    assert gesture[0] == "box"
    apply_gesture(bpy.context, gesture, corners)
    assert list(settings.box) == pytest.approx(box, abs=1e-3) and settings.mode == "lift"
    # A click on the monitor's centre lands on the monitor's pixel.
    centre = world_to_camera_view(scene, scene.camera, monitor)
    click = tuple(low + np.array([centre.x, centre.y]) * (high - low))
    assert drag.feed("LEFTMOUSE", "PRESS", *click) is None
    gesture = drag.feed("LEFTMOUSE", "RELEASE", click[0] + 1, click[1])
    assert gesture[0] == "click"
    from scene_r1.addon.capture import World, scene_meshes

    world = World(bpy.context, scene_meshes(bpy.context))
    pixel = region_point_to_pixel(gesture[1], corners, at_render, at_capture)
    assert object_at(world.cast(at_capture, pose)[1], world.names, pixel) == "Monitor"
    assert drag.feed("ESC", "PRESS", 0, 0) == "cancel"
    assert things


def _frame_ratio(render) -> float:
    """Height / width of the camera frame as the viewport draws it (the displayed aspect)."""
    return (render.resolution_y * render.pixel_aspect_y) / (render.resolution_x * render.pixel_aspect_x)
