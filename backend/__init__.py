"""The GPU backend: readers, synthetic scenes, models, pipeline, server, training, CLI.

Imports torch and friends freely; never imported by the Blender add-on.
"""
