"""The add-on\x27s decisions as plain functions, tested without Blender."""
