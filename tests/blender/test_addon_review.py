"""The add-on's review findings, each through the path a user takes: a box lifted on the camera view
whatever the capture orbits, a click selecting natively, the run operator and the scripting entry,
and a Blender-native capture carrying its candidate table (issue 18)."""

import bpy
import numpy as np
import pytest
from bpy_extras.object_utils import world_to_camera_view
from conftest import free_address, preferences
from rooms import build_study

import scene_r1
from scene_r1.shared.camera import blender_to_opencv_pose

CORNERS = [(0.0, 0.0), (960.0, 0.0), (960.0, 540.0), (0.0, 540.0)]  # the camera frame in region pixels


def region_point(obj) -> tuple[float, float]:
    """Where an object's origin shows in a region whose camera frame spans CORNERS (as Blender maps it)."""
    scene = bpy.context.scene
    frame = world_to_camera_view(scene, scene.camera, obj.matrix_world.translation)
    return 960.0 * frame.x, 540.0 * frame.y


def test_a_click_selects_the_object_under_it_natively_whatever_its_size(addon):
    from scene_r1.addon.operators import start_query
    from scene_r1.addon.viewport import BoxDrag, apply_gesture

    build_study(bpy.context)
    preferences().backend_address = "tcp://127.0.0.1:9"  # nothing listens: a click must not need the backend
    for name in ("Monitor", "Stool", "Globe", "Cup"):
        drag = BoxDrag()
        x, y = region_point(bpy.data.objects[name])
        drag.feed("LEFTMOUSE", "PRESS", x, y)
        gesture = drag.feed("LEFTMOUSE", "RELEASE", x + 1, y)
        assert apply_gesture(bpy.context, gesture, CORNERS) == "click" and bpy.context.scene.scene_r1.click
        assert start_query(bpy.context) is None, name  # answered at once: no backend lift of a 2 px box
        assert [o.name for o in bpy.context.selected_objects] == [name]
        glowing = [o for o in bpy.data.objects if o.get("scene_r1_highlight") == name]
        assert glowing and all(o.hide_render for o in glowing)  # highlights stay out of final renders
    from scene_r1.addon.operators import is_click

    assert is_click(bpy.context.scene.scene_r1)
    bpy.context.scene.scene_r1.box = (10, 10, 200, 150)
    assert not is_click(bpy.context.scene.scene_r1)  # a box set anew is a box again


def test_the_run_operator_refuses_an_unknown_mode_in_one_line(addon):
    build_study(bpy.context)
    settings = bpy.context.scene.scene_r1
    # an ERROR report (Blender raises it as RuntimeError in scripts), not a TypeError from the enum
    with pytest.raises(RuntimeError, match=r"^Error: Scene-R1: unknown mode 'find'; use ground, ask, lift"):
        bpy.ops.scene_r1.run(query="the cup", mode="find", wait=True)
    assert settings.mode == "ground" and settings.query == ""  # nothing changed


def test_run_passes_the_address_through_and_returns_the_runner_state(addon):
    build_study(bpy.context)
    saved = preferences().backend_address
    outcome = scene_r1.run("the cup", address=free_address(), timeout=30)  # nothing listens there
    assert outcome.state == "failed" and "did not answer" in outcome.message, outcome
    assert preferences().backend_address == saved


def test_a_capture_carries_its_candidate_table_numbered_as_its_index_maps(addon):
    from scene_r1.addon.capture import capture, plan_from_settings
    from scene_r1.shared.scene_wire import scene_from_wire, scene_to_wire

    build_study(bpy.context)
    material = bpy.data.materials.new("Material.002")
    material.diffuse_color = (0.8, 0.05, 0.05, 1.0)
    if bpy.app.version < (5, 0, 0):
        material.use_nodes = True
    material.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (0.8, 0.05, 0.05, 1.0)
    bpy.data.objects["Cup"].data.materials.append(material)
    settings = bpy.context.scene.scene_r1
    settings.frames, settings.width, settings.height = 3, 96, 72
    captured = capture(bpy.context, plan_from_settings(bpy.context, settings), samples=1)
    table = captured.scene.candidates
    assert table.ids == list(range(1, len(captured.object_names) + 1))
    assert [c.name for c in table.candidates] == captured.object_names
    cup = table.by_id(captured.object_names.index("Cup") + 1)
    assert (cup.colour, cup.materials, cup.classes) == ("red", ("Material.002",), ("cup",))
    assert any(r.startswith("on desk") for r in table.relations[cup.id])
    for index, object_index in enumerate(captured.object_index):
        assert (captured.scene.instance(index) == object_index).all()
    meta, arrays = scene_to_wire(captured.scene)
    assert "candidates" in meta and "instance/0" in arrays  # the backend's --grounding auto sees them
    assert scene_from_wire(meta, arrays).candidates.ids == table.ids


@pytest.mark.parametrize("source", ["SCENE", "SELECTION", "AUTO"])
def test_a_box_is_lifted_on_the_camera_view_whatever_the_capture_orbits(addon, backend, source):
    """A box on one scanned mesh (no single object fits) goes to the backend as frame 0: that frame
    must be the camera's own view for every capture source."""
    from scene_r1.addon.capture import camera_view
    from scene_r1.addon.operators import finish_query, start_query
    from scene_r1.addon.sample_scene import build_sample_room

    build_sample_room(bpy.context)
    for obj in bpy.data.objects:
        obj.select_set(obj.type == "MESH")
    bpy.context.view_layer.objects.active = bpy.data.objects["Floor"]
    bpy.ops.object.join()
    preferences().backend_address = backend[0]
    settings = bpy.context.scene.scene_r1
    settings.frames, settings.width, settings.height, settings.samples = 6, 160, 120, 2
    settings.capture_source = source
    _, intrinsics, pose = camera_view(bpy.context, settings)
    cube = np.array([[x, y, z, 1.0] for x in (-1.0, -0.2) for y in (-0.2, 0.6) for z in (0.0, 0.8)])
    camera = (np.linalg.inv(pose) @ cube.T).T
    u = camera[:, 0] / camera[:, 2] * intrinsics.fx + intrinsics.cx
    v = camera[:, 1] / camera[:, 2] * intrinsics.fy + intrinsics.cy
    settings.mode, settings.box = "lift", [u.min(), v.min(), u.max() + 1, v.max() + 1]
    runner = start_query(bpy.context)
    assert runner is not None  # one mesh: the backend lifts the box
    runner.wait(240)
    assert runner.state == runner.DONE, runner.error
    scene = runner.capture.scene
    assert np.allclose(scene.poses[0], blender_to_opencv_pose(np.array(bpy.context.scene.camera.matrix_world)))
    assert scene.intrinsics_at(0).as_array() == pytest.approx(intrinsics.as_array())
    result = finish_query(bpy.context, runner)[0]
    low, high = np.array(result["scene_r1_box_3d"]).reshape(2, 3)
    assert np.allclose(low, [-1.0, -0.2, 0.0], atol=0.15) and np.allclose(high, [-0.2, 0.6, 0.8], atol=0.15)
