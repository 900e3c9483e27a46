"""`scene-r1 view`: the Open3D viewer (app.py) and what it draws and exports (logic.py)."""
