"""How the backend process uses this machine's cores and memory, set once when `scene_r1.backend` is
first imported (every backend process: the server, the CLI, Ray workers, the add-on's local backend).
The add-on never imports the backend, so Blender's own process is left alone."""

from __future__ import annotations

import ctypes
import os
import platform

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3


def limit_blas_threads() -> bool:
    """One OpenBLAS thread for numpy, unless the user set OPENBLAS_NUM_THREADS.

    numpy's OpenBLAS threads busy-wait after each call, and on a few cores they take the cores torch's
    next operation needs: on 2 cores MobileSAM's decoder ran 85 ms between numpy work instead of
    45 ms, and a warm query 1.7 s instead of 1.1 s (`scene-r1 bench cache`). The backend's numpy
    products are small (points times 3x3), as fast on one thread; torch keeps its own threads.
    Child processes inherit the variable; this process's numpy, loaded already or not, is limited
    through threadpoolctl."""
    if "OPENBLAS_NUM_THREADS" in os.environ:
        return False
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    import numpy  # noqa: F401  (loaded first, so that threadpoolctl finds its OpenBLAS)

    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # an environment built before it was a dependency: a tuning, not a reason to fail
        return False
    threadpool_limits(1, user_api="blas")
    return True


def _glibc():
    """The C library when it is glibc (Linux), else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def keep_freed_memory() -> bool:
    """Large blocks freed by torch and numpy stay with the process for the next query (glibc only;
    not when the user tunes malloc through MALLOC_* variables).

    By default glibc serves each block over a few MB with its own mmap and unmaps it on free, so
    every image embedding, attention map and depth copy of every query is faulted in afresh: on 2
    cores half the CPU time of `scene-r1 bench cache` was the kernel's (48 s of 95 s). Served from
    the heap and kept, a cold query and its model loading ran 1.6x faster (26.6 s -> 16.7 s for the
    same queries), for a peak RSS 12% higher (1.66 -> 1.86 GB). The server gives the memory back
    when it falls idle (release_freed_memory)."""
    libc = _glibc()
    if libc is None or any(name.startswith("MALLOC_") for name in os.environ):
        return False
    settings = ((M_MMAP_THRESHOLD, 1 << 30), (M_TRIM_THRESHOLD, 1 << 30), (M_TOP_PAD, 512 << 20))
    return all(libc.mallopt(parameter, value) == 1 for parameter, value in settings)


def release_freed_memory() -> bool:
    """Give the memory freed so far back to the system (glibc's malloc_trim): the server calls it when
    it has nothing left to do, so what a query freed is kept while queries come, and returned
    after. On the kitchen a warm sink query left 1.8 GB resident, 1.27 GB after the trim (8-45 ms)."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))
