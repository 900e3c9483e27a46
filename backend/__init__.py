"""The GPU backend: readers, synthetic scenes, models, pipeline, server, training, CLI.

Imports torch and friends freely; never imported by the Blender add-on.
"""

import os

# numpy's OpenBLAS threads busy-wait after each call, and on a few cores they take the cores torch's
# next operation needs: on 2 cores MobileSAM's decoder ran 85 ms between numpy work instead of 45 ms,
# and a warm query 1.7 s instead of 1.1 s (`scene-r1 bench cache`). The backend's numpy products are
# small (points times 3x3), as fast on one thread; torch keeps its own threads. A user's own
# OPENBLAS_NUM_THREADS is left alone. Child processes (Ray workers, the add-on's local backend)
# inherit the variable; this process's numpy, loaded already or not, is limited by threadpoolctl.
if "OPENBLAS_NUM_THREADS" not in os.environ:
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    import numpy  # noqa: F401  (loaded first, so that threadpoolctl finds its OpenBLAS)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
