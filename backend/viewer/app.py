"""The Open3D GUI viewer (open3d.visualization.gui): the scan, a query field with find/ask/box
modes, progress, each result's 3D mask and boxes, every stage's reasoning, the key frame with its
2D box, past results listed and toggled, and exports.

Talks to the backend through the same client as Blender (a local backend is started when no
address is given). Worker threads never touch the UI: they hand everything to the main thread
with gui.Application.post_to_main_thread.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import open3d as o3d

from ...shared.client import Client
from ...shared.results import QueryResult
from ..data import open_scene
from ..geometry.fusion import FusionSettings, fuse_scene
from ..service.local import spawn_local_server, stop_local_server
from .logic import PALETTE, export_result, parse_box_prompt, result_drawables, shows_colour

gui = o3d.visualization.gui
rendering = o3d.visualization.rendering
MODES = ("find", "ask", "box")


class Viewer:
    def __init__(
        self,
        scene_dir,
        address: str | None = None,
        backend_args: list[str] | None = None,
        export_dir=None,
        screenshot=None,
        auto: dict | None = None,
        width: int = 1280,
        height: int = 800,
    ):
        self.scene = open_scene(scene_dir)
        self.backend = None
        if address is None:
            address, self.backend = spawn_local_server(backend_args or [])
        self.address = address
        self.export_dir = Path(export_dir or Path(scene_dir) / "scene-r1-exports")
        self.screenshot, self.auto = screenshot, auto
        self.results: list[dict] = []  # {"result": QueryResult, "names": [...]}
        self.scene_hash = None
        self.fused = None
        self.cancel = threading.Event()
        self.failed = ""

        app = gui.Application.instance
        app.initialize()
        self.app = app
        self.window = app.create_window(f"Scene-R1 - {self.scene.name}", width, height)
        window = self.window
        em = window.theme.font_size
        self.widget = gui.SceneWidget()
        self.widget.scene = rendering.Open3DScene(window.renderer)
        self.widget.scene.set_background([0.12, 0.12, 0.14, 1.0])
        window.add_child(self.widget)

        self.panel = self._build_panel(em)
        window.add_child(self.panel)
        window.set_on_layout(self._layout)
        window.set_on_close(self._on_close)
        threading.Thread(target=self._prepare, daemon=True).start()

    def _build_panel(self, em: float):
        """The side panel: query, mode, run/cancel/export, progress, reasoning, key frame, results."""
        panel = gui.Vert(0.4 * em, gui.Margins(0.6 * em, 0.6 * em, 0.6 * em, 0.6 * em))
        panel.add_child(gui.Label("Query"))
        self.query = gui.TextEdit()
        self.query.placeholder_text = "the chair left of the table / how many cubes?"
        panel.add_child(self.query)
        row = gui.Horiz(0.4 * em)
        self.mode = gui.Combobox()
        for mode in MODES:
            self.mode.add_item(mode)
        row.add_child(self.mode)
        self.box = gui.TextEdit()
        self.box.placeholder_text = "box: frame x1,y1,x2,y2 +x,y -x,y"
        row.add_child(self.box)
        panel.add_child(row)
        row = gui.Horiz(0.4 * em)
        self.run_button = gui.Button("Run")
        self.run_button.set_on_clicked(self._on_run)
        self.cancel_button = gui.Button("Cancel")
        self.cancel_button.set_on_clicked(lambda: self.cancel.set())
        self.export_button = gui.Button("Export")
        self.export_button.set_on_clicked(self._on_export)
        for button in (self.run_button, self.cancel_button, self.export_button):
            row.add_child(button)
        panel.add_child(row)
        self.progress = gui.ProgressBar()
        panel.add_child(self.progress)
        self.status = gui.Label("fusing the scan...")
        panel.add_child(self.status)
        panel.add_child(gui.Label("Reasoning"))
        self.reasoning = gui.Label("")
        panel.add_child(self.reasoning)
        panel.add_child(gui.Label("Key frame"))
        self.key_frame = gui.ImageWidget(o3d.geometry.Image(np.zeros((120, 160, 3), np.uint8)))
        panel.add_child(self.key_frame)
        panel.add_child(gui.Label("Results"))
        self.result_list = gui.Vert(0.2 * em)
        panel.add_child(self.result_list)
        return panel

    # ---- layout and lifecycle ------------------------------------------------------------------
    def _layout(self, context):
        frame = self.window.content_rect
        width = min(int(frame.width * 0.34), 28 * self.window.theme.font_size)
        self.widget.frame = gui.Rect(frame.x, frame.y, frame.width - width, frame.height)
        self.panel.frame = gui.Rect(frame.get_right() - width, frame.y, width, frame.height)

    def _on_close(self):
        self.cancel.set()
        if self.backend is not None:
            stop_local_server(self.backend)
        return True

    def run(self) -> None:
        self.app.run()
        if self.backend is not None:
            stop_local_server(self.backend)

    def post(self, function) -> None:
        self.app.post_to_main_thread(self.window, function)

    # ---- worker threads ------------------------------------------------------------------------
    def _prepare(self):
        """Fuse the scan and upload it (worker thread), then show it (main thread)."""
        try:
            stride = max(1, len(self.scene) // 60)
            fused = fuse_scene(
                self.scene,
                FusionSettings(frame_stride=stride),
                progress=lambda done, total: self.post(lambda: self._set_progress("fusing the scan", done / total)),
            )
            with Client(self.address, timeout=120) as client:
                self.post(lambda: self._set_progress("uploading the scan", 0.0))
                self.scene_hash = client.upload(self.scene)
        except Exception as error:  # noqa: BLE001 - shown in the window
            message = f"could not prepare the scan: {error}"
            self.post(lambda: self._fail(message))
            return
        self.fused = fused
        self.post(self._show_scan)

    def _query(self, mode: str, text: str, options: dict):
        try:
            with Client(self.address, timeout=120) as client:
                result = client.query(
                    self.scene_hash,
                    mode,
                    text,
                    cancel=self.cancel,
                    on_progress=lambda p: self.post(
                        lambda: self._set_progress(p["stage"], p["done"] / max(p["total"], 1))
                    ),
                    **options,
                )
        except Exception as error:  # noqa: BLE001
            message = str(error)
            self.post(lambda: self._fail(message))
            return
        self.post(lambda: self._show_result(result))

    # ---- main thread ---------------------------------------------------------------------------
    def _set_progress(self, stage: str, fraction: float):
        self.progress.value = float(np.clip(fraction, 0, 1))
        self.status.text = stage

    def _fail(self, message: str):
        self.failed = message
        self.status.text = f"error: {message}"[:200]
        self.run_button.enabled = True
        if self.screenshot:
            self.window.close()

    def _show_scan(self):
        mesh = self.fused.triangle_mesh()
        mesh.compute_vertex_normals()
        material = rendering.MaterialRecord()
        material.shader = "defaultLit"
        self.widget.scene.add_geometry("scan", mesh, material)
        self.widget.setup_camera(60.0, self.widget.scene.bounding_box, self.widget.scene.bounding_box.get_center())
        self.status.text = f"{self.scene.name}: {len(self.scene)} frames, {len(mesh.vertices)} vertices"
        self.progress.value = 1.0
        if self.auto:
            self.query.text_value = self.auto.get("text", "")
            self.mode.selected_text = self.auto.get("mode", "find")
            self.box.text_value = self.auto.get("box", "")
            self._on_run()

    def _on_run(self):
        if self.scene_hash is None:
            self.status.text = "the scan is not ready yet"
            return
        mode = {"find": "ground", "ask": "ask", "box": "lift"}[self.mode.selected_text]
        options = {}
        if mode == "lift":
            try:
                options = parse_box_prompt(self.box.text_value)
            except ValueError as error:
                self.status.text = str(error)
                return
        self.cancel.clear()
        self.run_button.enabled = False
        threading.Thread(target=self._query, args=(mode, self.query.text_value, options), daemon=True).start()

    def _show_result(self, result: QueryResult):
        number = len(self.results)
        names = []
        for drawable in result_drawables(result, number):
            material = rendering.MaterialRecord()
            if drawable.kind == "points":
                geometry = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(drawable.points))
                geometry.colors = o3d.utility.Vector3dVector(drawable.colors)
                material.shader, material.point_size = "defaultUnlit", 4.0
            else:
                geometry = o3d.geometry.LineSet(
                    o3d.utility.Vector3dVector(drawable.points), o3d.utility.Vector2iVector(drawable.lines)
                )
                geometry.colors = o3d.utility.Vector3dVector(drawable.colors)
                material.shader, material.line_width = "unlitLine", 3.0
            self.widget.scene.add_geometry(drawable.name, geometry, material)
            names.append(drawable.name)
        checkbox = gui.Checkbox(result.title()[:60])
        checkbox.checked = True
        checkbox.set_on_checked(
            lambda checked, names=names: [self.widget.scene.show_geometry(n, checked) for n in names]
        )
        self.result_list.add_child(checkbox)
        self.results.append({"result": result, "names": names})
        self.reasoning.text = (result.reasoning_text() + (f"\nanswer: {result.answer}" if result.answer else ""))[:1200]
        self._show_key_frame(result)
        self.status.text = result.title()
        self.progress.value = 1.0
        self.run_button.enabled = True
        self.window.set_needs_layout()
        self.window.post_redraw()
        if self.screenshot:
            colour = PALETTE[number % len(PALETTE)] if names else None
            threading.Thread(target=self._take_screenshot, args=(colour,), daemon=True).start()

    def _show_key_frame(self, result: QueryResult):
        key = result.key_frame
        if key is None:
            return
        rgb = np.ascontiguousarray(self.scene.frame(int(key)).rgb.copy())
        for instance in result.instances:
            x1, y1, x2, y2 = (int(round(v)) for v in instance.box_2d)
            cv2.rectangle(rgb, (x1, y1), (x2, y2), (255, 90, 0), max(1, rgb.shape[1] // 160))
        scale = 300 / rgb.shape[1]
        rgb = cv2.resize(rgb, (300, int(rgb.shape[0] * scale)))
        self.key_frame.update_image(o3d.geometry.Image(rgb))

    def _on_export(self):
        if not self.results or self.fused is None:
            self.status.text = "nothing to export yet"
            return
        last = self.results[-1]
        folder = self.export_dir / f"result-{len(self.results) - 1}"
        paths = export_result(
            folder,
            self.scene.name,
            self.fused.mesh_vertices,
            self.fused.mesh_colors,
            last["result"],
            scene=self.scene,
            fused=self.fused,
        )
        self.status.text = f"exported to {folder} ({', '.join(p.name for p in paths.values())})"

    def _take_screenshot(self, colour=None, timeout: float = 120.0, still: int = 3):
        """Grab the display once it shows the result. A CPU renderer under load presents frames
        seconds late (the Vulkan swapchain keeps several), so keep asking for redraws until the
        screen has held still for `still` grabs in a row and shows the result: a change since the
        first grab (or 15 s of stillness, when the result was already on screen at the first
        grab), and the result's colour for a result drawn in 3D."""
        from PIL import ImageGrab

        previous, image, unchanged, changed = None, None, 0, False
        started = time.monotonic()

        def shown(current) -> bool:
            # A change since the first grab (the result came late), or 15 s still (it was there at
            # once); and the result's colour, which the scene itself may also hold.
            drawn = changed or time.monotonic() - started > 15
            return drawn and (colour is None or shows_colour(current, colour))

        while time.monotonic() - started < timeout:
            for _ in range(4):  # one redraw per swapchain image, so none still holds an old frame
                drawn = threading.Event()
                self.post(lambda drawn=drawn: (self.window.post_redraw(), drawn.set()))
                drawn.wait(30)
                time.sleep(0.1)
            image = ImageGrab.grab(xdisplay=os.environ.get("DISPLAY"))
            current = np.asarray(image, np.int16)
            # Filament dithers: two draws of the same scene differ by a grey level here and there.
            difference = np.abs(current - previous).mean() if previous is not None else 0.0
            changed = changed or difference > 2.0  # the result arrived on screen (a late frame)
            unchanged = unchanged + 1 if previous is not None and difference < 1.0 else 0
            previous = current
            if unchanged >= still and shown(current):
                break
        Path(self.screenshot).parent.mkdir(parents=True, exist_ok=True)
        image.save(self.screenshot)
        self.post(self._on_export)
        time.sleep(0.5)
        self.post(self.window.close)


def run_viewer(scene_dir, address=None, backend_args=None, screenshot=None, auto=None, export_dir=None) -> int:
    viewer = Viewer(scene_dir, address, backend_args, export_dir=export_dir, screenshot=screenshot, auto=auto)
    viewer.run()
    if viewer.failed:
        print(f"scene-r1 view: {viewer.failed}", file=sys.stderr)
        return 4
    return 0
