"""How the backend process uses this machine's cores and memory, set once when `scene_r1.backend` is
first imported (every backend process: the server, the CLI, Ray workers, the add-on's local backend).
The add-on never imports the backend, so Blender's own process is left alone."""

from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3


def limit_blas_threads() -> bool:
    """One thread for the BLAS that numpy's wheel carries, unless the user set OPENBLAS_NUM_THREADS.

    numpy's OpenBLAS threads busy-wait after each call, and on a few cores they take the cores torch's
    next operation needs: on 2 cores MobileSAM's decoder ran 85 ms between numpy work instead of
    45 ms, and a warm query 1.7 s instead of 1.1 s (`scene-r1 bench cache`). The backend's numpy
    products are small (points times 3x3), as fast on one thread. Only the library inside numpy's
    own folder is limited, through threadpoolctl: a BLAS that torch loads (OpenBLAS on ARM wheels)
    keeps its threads. Every backend process does this itself when it imports the backend."""
    if "OPENBLAS_NUM_THREADS" in os.environ:
        return False
    import numpy  # loaded first, so that threadpoolctl finds its BLAS

    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # an environment built before it was a dependency: a tuning, not a reason to fail
        return False
    controller = ThreadpoolController()
    home = Path(numpy.__file__).resolve().parent
    ours = [
        info["filepath"]
        for info in controller.info()
        if info["user_api"] == "blas"
        and Path(info["filepath"]).resolve().parent.name in (home.name, f"{home.name}.libs")
    ]
    if not ours:
        return False
    controller.select(filepath=ours).limit(limits=1)
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
    """Large blocks freed by torch and numpy stay with the process for the next allocation (glibc only;
    not when the user tunes malloc through MALLOC_* variables or GLIBC_TUNABLES).

    By default glibc serves each block over a few MB with its own mmap and unmaps it on free, so
    every image embedding, attention map and depth copy of a query is faulted in afresh: on 2 cores
    half the CPU time of `scene-r1 bench cache` was the kernel's (48 s of 95 s). Served from the heap
    and kept, a script that loads the models and runs four queries ran in 16.7 s instead of 26.6 s,
    for a peak RSS 12% higher (1.66 -> 1.86 GB). The server gives the memory back after a quiet
    spell (release_freed_memory). Glibc before 2.35 caps the mmap threshold at 32 MiB."""
    libc = _glibc()
    tuned = any(name.startswith("MALLOC_") for name in os.environ) or "malloc" in os.environ.get("GLIBC_TUNABLES", "")
    if libc is None or tuned:
        return False
    threshold = libc.mallopt(M_MMAP_THRESHOLD, 1 << 30) == 1 or libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1
    trim = libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1
    pad = libc.mallopt(M_TOP_PAD, 512 << 20) == 1
    return threshold and trim and pad


def release_freed_memory() -> bool:
    """Give the memory freed so far back to the system (glibc's malloc_trim). The server calls it
    after a quiet spell (service/jobs.py), as jemalloc returns memory after 10 s by default: what a
    query freed is kept while queries come, and returned after. On the kitchen a warm sink query
    left 1.8 GB resident, 1.27 GB after the trim (8-45 ms); trimming after every query instead made
    the next warm queries 0.07 s slower."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))
