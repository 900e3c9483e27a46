"""The GPU backend: readers, synthetic scenes, models, pipeline, server, training, CLI.

Imports torch and friends freely; never imported by the Blender add-on.
"""

from .tuning import keep_freed_memory, limit_blas_threads

limit_blas_threads()
keep_freed_memory()
