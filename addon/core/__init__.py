"""The add-on's decisions as plain functions and small classes, tested without Blender.

capture.py   capture plans (orbits, animation frames) and result geometry (boxes, thinning, voting)
framing.py   the default capture: the active camera's view first, then an orbit around what it sees
region.py    the viewport's camera frame <-> captured pixels (draw box, click), for any aspect/fit/shift
selection.py which of the scene's objects a box, a click or a result's masks select (object-index maps)
query.py     a query's life (validate, health check, capture, upload, query, deadline) over a small tool
             interface that the add-on fills with bpy and the tests with plain Python

numpy + the standard library only; imports nothing of bpy or ..addon outside core/.
"""
