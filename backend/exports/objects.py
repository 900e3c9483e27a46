"""An object cut from the fused scan, as a mesh an AR tool opens: GLB (glTF 2.0, through trimesh)
and USDZ (Pixar's USD, through usd-core's pxr). The cut keeps the scan's faces whose three vertices
lie on the object's 3D mask, with their vertex colours. Both formats are Y-up metres, so the
object is stood upright (the scan's up is where its cameras' tops point, snapped to a world axis
when close to one) with the centre of its base at the origin; `object_to_world` places it back.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...shared.scene import SceneError
from ..geometry.neighbours import near_points
from .names import safe_stem


@dataclass
class ObjectMesh:
    label: str
    vertices: np.ndarray  # (V, 3) float32, in the object's upright frame
    triangles: np.ndarray  # (T, 3) int32
    colors: np.ndarray  # (V, 3) float32 in 0..1
    scan_vertices: np.ndarray  # (V,) indices of these vertices in the scan's mesh
    object_to_world: np.ndarray  # 4x4: the object's frame in the scan's world


def rotation_to_y_up(up: np.ndarray) -> np.ndarray:
    """The rotation taking `up` to +Y (Rodrigues), the smallest one."""
    target = np.array([0.0, 1.0, 0.0])
    axis, cos = np.cross(up, target), float(np.dot(up, target))
    if np.linalg.norm(axis) < 1e-9:
        return np.eye(3) if cos > 0 else np.diag([1.0, -1.0, -1.0])
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + k + k @ k * (1 / (1 + cos))


def cut_object(vertices, triangles, colors, mask_points, label: str, up, radius: float = 0.03) -> ObjectMesh:
    """The scan mesh's faces whose three vertices lie within `radius` of the mask's points."""
    vertices, triangles = np.asarray(vertices, np.float64), np.asarray(triangles, np.int64)
    inside = near_points(vertices, np.asarray(mask_points, np.float64), radius)
    faces = triangles[inside[triangles].all(axis=1)] if len(triangles) else np.zeros((0, 3), np.int64)
    if len(faces) == 0:
        raise SceneError(f"no face of the scan lies on the {label or 'object'}'s 3D mask (radius {radius} m)")
    used = np.unique(faces)
    remap = np.full(len(vertices), -1, np.int64)
    remap[used] = np.arange(len(used))
    rotation = rotation_to_y_up(np.asarray(up, np.float64))
    upright = vertices[used] @ rotation.T
    base = np.array(
        [
            (upright[:, 0].min() + upright[:, 0].max()) / 2,
            upright[:, 1].min(),
            (upright[:, 2].min() + upright[:, 2].max()) / 2,
        ]
    )
    world_to_object = np.eye(4)
    world_to_object[:3, :3], world_to_object[:3, 3] = rotation, -base
    return ObjectMesh(
        label=label,
        vertices=(upright - base).astype(np.float32),
        triangles=remap[faces].astype(np.int32),
        colors=np.clip(np.asarray(colors, np.float32)[used], 0, 1),
        scan_vertices=used.astype(np.int64),
        object_to_world=np.linalg.inv(world_to_object),
    )


def linear_colors(srgb: np.ndarray) -> np.ndarray:
    """Camera colours (sRGB-encoded) as the linear values glTF's COLOR_0 and USD's displayColor hold."""
    srgb = np.clip(np.asarray(srgb, np.float64), 0, 1)
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4).astype(np.float32)


def write_glb(obj: ObjectMesh, path) -> Path:
    import trimesh

    path = Path(path)
    linear = np.rint(linear_colors(obj.colors) * 255)
    rgba = np.concatenate([linear, np.full((len(obj.colors), 1), 255)], axis=1).astype(np.uint8)
    mesh = trimesh.Trimesh(obj.vertices, obj.triangles, vertex_colors=rgba, process=False)
    scene = trimesh.Scene()
    scene.add_geometry(mesh, node_name=usd_name(obj.label), geom_name=usd_name(obj.label))
    path.write_bytes(scene.export(file_type="glb"))
    return path


def usd_name(label: str) -> str:
    """A label as a USD prim (and glTF node) name: the file stem of bundle.safe_stem, with the
    characters USD identifiers lack ("." and "-") as "_" and a letter first."""
    name = safe_stem(label, "object").replace(".", "_").replace("-", "_")
    return name if name[0].isalpha() else f"object_{name}"


def write_usdz(obj: ObjectMesh, path) -> Path:
    """A USDZ package (ARKit profile): one mesh with per-vertex displayColor, bound to a
    UsdPreviewSurface whose diffuse colour is the object's mean colour (AR Quick Look shows that)."""
    from pxr import Gf, Sdf, Usd, UsdGeom, UsdShade, UsdUtils, Vt

    path = Path(path)
    name = usd_name(obj.label)
    with tempfile.TemporaryDirectory() as tmp:
        layer = Path(tmp) / f"{name}.usdc"
        stage = Usd.Stage.CreateNew(str(layer))
        UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
        UsdGeom.SetStageMetersPerUnit(stage, 1.0)
        root = UsdGeom.Xform.Define(stage, f"/{name}")
        stage.SetDefaultPrim(root.GetPrim())
        mesh = UsdGeom.Mesh.Define(stage, f"/{name}/Mesh")
        mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(obj.vertices, np.float32)))
        mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(len(obj.triangles), 3, np.int32)))
        mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(obj.triangles.reshape(-1).astype(np.int32)))
        mesh.CreateExtentAttr(
            Vt.Vec3fArray([Gf.Vec3f(*map(float, obj.vertices.min(0))), Gf.Vec3f(*map(float, obj.vertices.max(0)))])
        )
        mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
        mesh.CreateDoubleSidedAttr(True)  # a scan's surface is open: show its back too
        colours = UsdGeom.PrimvarsAPI(mesh).CreatePrimvar(
            "displayColor", Sdf.ValueTypeNames.Color3fArray, UsdGeom.Tokens.vertex
        )
        colours.Set(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(linear_colors(obj.colors))))
        material = UsdShade.Material.Define(stage, f"/{name}/Material")
        shader = UsdShade.Shader.Define(stage, f"/{name}/Material/Surface")
        shader.CreateIdAttr("UsdPreviewSurface")
        shader.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).Set(
            Gf.Vec3f(*map(float, linear_colors(obj.colors).mean(0)))
        )
        shader.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(0.9)
        material.CreateSurfaceOutput().ConnectToSource(shader.ConnectableAPI(), "surface")
        UsdShade.MaterialBindingAPI.Apply(mesh.GetPrim()).Bind(material)
        stage.GetRootLayer().Save()
        if not UsdUtils.CreateNewARKitUsdzPackage(Sdf.AssetPath(str(layer)), str(path)):
            raise SceneError(f"could not write the USDZ package {path}")
    return path


def usd_problems(path) -> list[str]:
    """What usdchecker reports for a file, from the validators usd-core registers (stage metadata,
    USDZ packaging, material bindings, shader compliance, ...): [] when it passes."""
    from pxr import Usd, UsdValidation

    stage = Usd.Stage.Open(str(path))
    context = UsdValidation.ValidationContext(UsdValidation.ValidationRegistry().GetOrLoadAllValidators())
    return [
        f"{error.GetValidator().GetMetadata().name if error.GetValidator() else 'usd'}: {error.GetMessage()}"
        for error in context.Validate(stage)
        if error.GetType() != UsdValidation.ValidationErrorType.Info
    ]
