"""A result as Blender data: in a scene of separate objects, the scene's own objects selected and
highlighted; for a scanned mesh, the 3D mask's points as an object in the "Scene-R1" collection and
the operations it drives (selecting what it covers, separating the scan's covered faces)."""

from __future__ import annotations

import json

import bmesh
import bpy
import numpy as np
from mathutils.bvhtree import BVHTree

from .capture import RESULT_COLLECTION, scene_meshes
from .core.capture import box_mesh, covered_faces, thin_points, vote_objects

HIGHLIGHT = "Scene-R1 highlight"


def linked_collection(context, name: str) -> bpy.types.Collection:
    """The collection of that name, made if missing and linked into the scene."""
    collection = bpy.data.collections.get(name)
    if collection is None:
        collection = bpy.data.collections.new(name)
    if collection.name not in context.scene.collection.children:
        context.scene.collection.children.link(collection)
    return collection


def result_collection(context) -> bpy.types.Collection:
    return linked_collection(context, RESULT_COLLECTION)


def highlight_material() -> bpy.types.Material:
    material = bpy.data.materials.get(HIGHLIGHT)
    if material is None:
        material = bpy.data.materials.new(HIGHLIGHT)
        if bpy.app.version < (5, 0, 0):
            material.use_nodes = True  # always on from 5.0 (and the property deprecated)
        nodes = material.node_tree.nodes
        nodes.clear()
        emission = nodes.new("ShaderNodeEmission")
        emission.inputs["Color"].default_value = (1.0, 0.25, 0.0, 1.0)
        emission.inputs["Strength"].default_value = 1.5  # brighter washes out to white under the view transform
        output = nodes.new("ShaderNodeOutputMaterial")
        material.node_tree.links.new(emission.outputs["Emission"], output.inputs["Surface"])
        material.diffuse_color = (1.0, 0.45, 0.05, 1.0)  # the solid viewport's colour
    return material


def _title(result) -> str:
    text = result.query or f"box on frame {result.key_frame}"
    return ("SR1 " + text)[:60]


def clear_highlights(context) -> None:
    """Remove the glowing boxes of the previous result (only ours: tagged scene_r1_highlight)."""
    for obj in [o for o in bpy.data.objects if o.get("scene_r1_highlight")]:
        data = obj.data
        bpy.data.objects.remove(obj)
        if data is not None and data.users == 0:
            bpy.data.meshes.remove(data)


def _glowing_box(name: str, aabb, wire: float):
    corners, faces = box_mesh(aabb)
    data = bpy.data.meshes.new(name)
    data.from_pydata(corners.tolist(), [], faces)
    data.materials.append(highlight_material())
    box = bpy.data.objects.new(name, data)
    box["scene_r1_glow"] = True
    box.hide_render = True  # a viewport aid: final renders show the scene as it is (show_highlights_in_renders)
    modifier = box.modifiers.new("wire", "WIREFRAME")
    modifier.thickness = max(0.01, wire * float(np.linalg.norm(corners.max(axis=0) - corners.min(axis=0))))
    return box


def select_result_objects(context, names: list[str], info: dict, box_wire: float = 0.04) -> list[bpy.types.Object]:
    """A Blender-native result: the scene's own objects, selected (the first active), each with the
    query and reasoning in custom properties and a glowing wire box (in the Scene-R1 collection,
    parented so it follows the object) that shows in the viewport, not in renders."""
    chosen = [bpy.data.objects[name] for name in names]
    clear_highlights(context)
    collection = result_collection(context)
    for obj in chosen:
        for key, value in info.items():
            obj[f"scene_r1_{key}"] = value
        matrix = np.array(obj.matrix_world)
        corners = np.array([matrix @ np.append(np.array(c), 1.0) for c in obj.bound_box])[:, :3]
        low, high = corners.min(axis=0), corners.max(axis=0)
        pad = max(0.02, 0.1 * float(np.linalg.norm(high - low)))  # around the object, not on its surface
        box = _glowing_box(f"SR1 highlight {obj.name}"[:60], [low - pad, high + pad], box_wire)
        box["scene_r1_highlight"] = obj.name
        collection.objects.link(box)
        box.parent = obj
        box.matrix_parent_inverse = obj.matrix_world.inverted()
    select_only(context, chosen)
    return chosen


def show_highlights_in_renders(show: bool = True) -> int:
    """Let the glowing result boxes show in final renders (off by default); returns how many there are."""
    boxes = [o for o in bpy.data.objects if o.get("scene_r1_glow")]
    for box in boxes:
        box.hide_render = not show
    return len(boxes)


def select_only(context, chosen: list) -> None:
    """Select exactly `chosen`, the first one active."""
    context.view_layer.update()  # objects removed just now leave no stale entries behind
    for obj in context.view_layer.objects:
        if obj is not None:
            obj.select_set(obj in chosen)
    if chosen:
        context.view_layer.objects.active = chosen[0]


def apply_result(context, result, box_wire: float = 0.02) -> list[bpy.types.Object]:
    # box_wire: wire thickness as a share of the box's diagonal
    """A scanned-mesh result: one mesh object per lifted instance (its 3D mask points as vertices),
    with a glowing wireframe box child and custom properties (query, reasoning, span, key frame, 2D
    box, score). Builds everything first and links it last, so a failure leaves the .blend as it was."""
    instances = result.lifted
    if result.mode == "ask" or not instances:
        return []
    built = []
    try:
        for number, instance in enumerate(instances):
            points = thin_points(instance.mask3d.points)
            mesh = bpy.data.meshes.new(_title(result))
            mesh.from_pydata(points.tolist(), [], [])
            obj = bpy.data.objects.new(_title(result) + (f" {number + 1}" if len(instances) > 1 else ""), mesh)
            _properties(obj, result, instance)
            box = _glowing_box(obj.name + " box", instance.mask3d.aabb, box_wire)
            box.parent = obj
            built += [obj, box]
    except Exception:
        for obj in built:
            data = obj.data
            bpy.data.objects.remove(obj)
            bpy.data.meshes.remove(data)
        raise
    collection = result_collection(context)
    for obj in built:
        collection.objects.link(obj)
    return [o for o in built if o.parent is None]


def _properties(obj, result, instance) -> None:
    obj["scene_r1_query"] = result.query
    obj["scene_r1_mode"] = result.mode
    obj["scene_r1_label"] = instance.label
    obj["scene_r1_reasoning"] = result.reasoning_text()
    for stage in ("temporal", "image", "answer"):
        if "reasoning" in result.stages.get(stage, {}):
            obj[f"scene_r1_reasoning_{stage}"] = result.stages[stage]["reasoning"]
            obj[f"scene_r1_answer_{stage}"] = str(result.stages[stage].get("answer", ""))
    if result.span:
        obj["scene_r1_span"] = [float(v) for v in result.span]
    if result.key_frame is not None:
        obj["scene_r1_key_frame"] = int(result.key_frame)
    obj["scene_r1_box_2d"] = [float(v) for v in instance.box_2d]
    obj["scene_r1_box_3d"] = [float(v) for corner in instance.mask3d.aabb for v in corner]
    obj["scene_r1_confidence"] = instance.mask3d.mean_confidence
    obj["scene_r1_timings"] = json.dumps(result.timings)


def mask_points(obj) -> np.ndarray:
    """A result object's 3D mask points, in world coordinates."""
    mesh = obj.data
    local = np.empty(len(mesh.vertices) * 3, np.float64)
    mesh.vertices.foreach_get("co", local)
    matrix = np.array(obj.matrix_world)
    local = local.reshape(-1, 3)
    return local @ matrix[:3, :3].T + matrix[:3, 3]


def objects_covered(context, result_obj, radius: float = 0.03, max_points: int = 3000) -> list[bpy.types.Object]:
    """The scene's objects a result's mask covers, by BVH distance voting (core.capture.vote_objects)."""
    points = thin_points(mask_points(result_obj), max_points)
    depsgraph = context.evaluated_depsgraph_get()
    distances = {}
    for obj in scene_meshes(context):
        tree = BVHTree.FromObject(obj, depsgraph)
        matrix = np.array(obj.matrix_world)
        inverse = np.linalg.inv(matrix)
        local = points @ inverse[:3, :3].T + inverse[:3, 3]
        found = np.full(len(points), np.inf)
        for number, point in enumerate(local):
            nearest = tree.find_nearest(point, 10 * radius)[0]
            if nearest is not None:
                world = matrix[:3, :3] @ np.array(nearest) + matrix[:3, 3]
                found[number] = np.linalg.norm(world - points[number])
        distances[obj.name] = found
    return [bpy.data.objects[name] for name in vote_objects(distances, radius)]


def select_covered(context, result_obj, radius: float = 0.03) -> list[bpy.types.Object]:
    chosen = objects_covered(context, result_obj, radius)
    for obj in context.view_layer.objects:
        obj.select_set(obj in chosen)
    if chosen:
        context.view_layer.objects.active = chosen[0]
    return chosen


def separate_covered_faces(context, scan_obj, result_obj, radius: float = 0.03) -> bpy.types.Object | None:
    """Split the faces of one scanned mesh that the mask covers into a new object."""
    mesh = scan_obj.data
    centres = np.empty(len(mesh.polygons) * 3, np.float64)
    mesh.polygons.foreach_get("center", centres)
    matrix = np.array(scan_obj.matrix_world)
    centres = centres.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]
    faces = set(covered_faces(centres, thin_points(mask_points(result_obj), 20000), radius).tolist())
    if not faces:
        return None
    part = scan_obj.copy()
    part.data = mesh.copy()
    part.name = f"{scan_obj.name} - {result_obj.get('scene_r1_label') or result_obj.name}"
    for target, keep in ((part, True), (scan_obj, False)):
        editable = bmesh.new()
        editable.from_mesh(target.data)
        editable.faces.ensure_lookup_table()
        doomed = [f for f in editable.faces if (f.index in faces) != keep]
        bmesh.ops.delete(editable, geom=doomed, context="FACES")
        editable.to_mesh(target.data)
        editable.free()
    for collection in scan_obj.users_collection:
        collection.objects.link(part)
    return part
