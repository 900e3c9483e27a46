import subprocess
import sys

import bpy


def test_package_imports_without_bpy_then_registers(empty_blend):
    # Importing the extension root must not pull in bpy or the add-on (Blender registers later).
    code = "import sys, scene_r1; assert 'bpy' not in sys.modules and 'scene_r1.addon' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)

    import scene_r1

    scene_r1.register()
    try:
        preferences = bpy.types.AddonPreferences.bl_rna_get_subclass_py("SceneR1Preferences")
        assert preferences is not None and preferences.bl_idname == "scene_r1"
    finally:
        scene_r1.unregister()
    assert bpy.types.AddonPreferences.bl_rna_get_subclass_py("SceneR1Preferences") is None
