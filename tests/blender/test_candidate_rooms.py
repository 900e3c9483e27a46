"""Issue 18's Blender side through a real backend: a Blender-native capture sends its candidate
table and object-index maps, the backend's default `--grounding auto` chooses among them, and the
chosen ids select exactly those Blender objects. (The model's accuracy is measured, not asserted:
python -m scene_r1.benchmarks.addon_candidates.)"""

import bpy
from conftest import preferences

from scene_r1.benchmarks.blender_rooms import build_room


def test_a_find_chooses_among_the_capture_objects_and_selects_exactly_the_chosen_ids(addon, backend):
    from scene_r1.addon.operators import finish_query, start_query

    queries = build_room(seed=7, generic=False)
    query = next(q for q in queries if q.text != "the table")
    preferences().backend_address, preferences().timeout = backend[0], 300
    settings = bpy.context.scene.scene_r1
    settings.frames, settings.width, settings.height, settings.samples = 4, 160, 120, 2
    settings.mode, settings.query = "ground", query.text
    runner = start_query(bpy.context)
    runner.wait(600)
    assert runner.state == runner.DONE, runner.error
    names, table = runner.capture.object_names, runner.capture.scene.candidates
    assert [c.name for c in table.candidates] == names  # the table went with the upload, ids = index values
    result = runner.result
    assert result.stages["grounding"]["mode"] == "candidates"  # --grounding auto took the table
    ids = result.stages["choose"]["ids"]
    assert result.stages["choose"]["source"] == "capture" and all(1 <= i <= len(names) for i in ids)
    finish_query(bpy.context, runner)
    assert sorted(o.name for o in bpy.context.selected_objects) == sorted(names[i - 1] for i in ids)
    print(f"{query.text!r}: the model chose {ids} = {[names[i - 1] for i in ids]}; referred {list(query.referred)}")
    # When the answer is right the selection is exactly the referred objects (and only them).
    result.stages["choose"]["ids"] = [names.index(n) + 1 for n in query.referred]
    chosen = finish_query(bpy.context, runner)
    assert sorted(o.name for o in chosen) == sorted(query.referred)
    assert sorted(o.name for o in bpy.context.selected_objects) == sorted(query.referred)
