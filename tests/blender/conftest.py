import pytest

bpy = pytest.importorskip("bpy", reason="Blender tests run in .venv-blender* (scripts/test.sh)")


@pytest.fixture
def empty_blend():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield bpy.context.scene
    bpy.ops.wm.read_factory_settings(use_empty=True)
