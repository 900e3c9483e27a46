"""The N-panel in the 3D viewport (sidebar tab "Scene-R1")."""

import bpy


class SCENE_R1_PT_panel(bpy.types.Panel):
    bl_idname = "SCENE_R1_PT_panel"
    bl_label = "Scene-R1"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Scene-R1"

    def draw(self, context):
        settings = context.scene.scene_r1
        status = context.window_manager.scene_r1_status
        layout = self.layout
        layout.prop(settings, "mode", expand=True)
        if settings.mode == "lift":
            layout.operator("scene_r1.draw_box", icon="SELECT_SET")
            layout.prop(settings, "box")
        else:
            layout.prop(settings, "query", text="")
        capture = layout.box()
        capture.label(text="Capture")
        capture.prop(settings, "capture_source", text="")
        row = capture.row(align=True)
        row.prop(settings, "frames")
        row.prop(settings, "fps")
        row = capture.row(align=True)
        row.prop(settings, "width")
        row.prop(settings, "height")
        capture.prop(settings, "samples")
        row = layout.row()
        if status.running:
            row.operator("scene_r1.cancel", icon="CANCEL")
        else:
            row.operator("scene_r1.run", icon="PLAY")
        if status.running:
            if hasattr(layout, "progress"):  # Blender 4.0+
                layout.progress(factor=status.progress / 100.0, text=f"{status.stage} {status.progress:.0f}%")
            else:
                layout.label(text=f"{status.stage} {status.progress:.0f}%")
        if status.covers:
            _wrapped(layout, f"Capture: {status.covers}")
        if status.message:
            _wrapped(layout, status.message)
        obj = context.active_object
        if obj is not None and "scene_r1_query" in obj:
            result = layout.box()
            result.label(text=f"Result: {obj.name}")
            if obj.type == "MESH" and not obj.data.polygons:  # a scan's 3D mask points
                result.operator("scene_r1.select_covered", icon="RESTRICT_SELECT_OFF")
                result.operator("scene_r1.separate_faces", icon="MOD_EXPLODE")
            elif obj.get("scene_r1_reasoning"):
                _wrapped(result, str(obj["scene_r1_reasoning"]))
        if settings.answer:
            answer = layout.box()
            answer.label(text="Answer")
            _wrapped(answer, settings.answer)
            if settings.reasoning:
                answer.label(text="Reasoning")
                _wrapped(answer, settings.reasoning)
        if not any(o.type == "MESH" for o in context.scene.objects):
            layout.operator("scene_r1.sample_room", icon="MESH_CUBE")
        if len(settings.history):
            history = layout.box()
            history.label(text="History")
            for item in list(settings.history)[-8:][::-1]:
                history.label(text=f"[{item.mode}] {item.query or 'box'}: {item.answer}"[:90])


def _wrapped(layout, text: str, width: int = 48) -> None:
    import textwrap

    for paragraph in text.splitlines():
        for line in textwrap.wrap(paragraph, width) or [""]:
            layout.label(text=line)


def register() -> None:
    bpy.utils.register_class(SCENE_R1_PT_panel)


def unregister() -> None:
    bpy.utils.unregister_class(SCENE_R1_PT_panel)
