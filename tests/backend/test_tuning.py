"""The backend process's tuning (backend/tuning.py): one thread for numpy's OpenBLAS beside torch, and
freed memory kept for the next query and given back on request, each unless the user set the
variable that governs it."""

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, os, threadpoolctl
import scene_r1.backend
import numpy  # loaded by the backend anyway; here so that both cases show its OpenBLAS
from scene_r1.backend.tuning import keep_freed_memory
blas = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"]
print(json.dumps({"env": os.environ.get("OPENBLAS_NUM_THREADS"), "blas": blas, "kept": keep_freed_memory()}))
"""


def probe(**env) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENBLAS_", "MALLOC_"))}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=clean | env, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_backend_runs_numpy_on_one_blas_thread():
    found = probe()
    if not found["blas"]:
        pytest.skip("this numpy carries no OpenBLAS of its own (conda MKL, macOS Accelerate)")
    assert found["env"] is None and found["blas"] == [1]  # numpy's own library only, no variable set
    if sys.platform == "linux":
        assert found["kept"] is True


def test_a_users_own_settings_are_left_alone():
    found = probe(OPENBLAS_NUM_THREADS="2", MALLOC_ARENA_MAX="2")
    assert found["env"] == "2" and found["blas"] in ([], [2])
    assert found["kept"] is False


def test_freed_memory_goes_back_to_the_system_on_request():
    """What release_freed_memory does: a freed 200 MB block served from the heap (kept, as the backend
    keeps them) is resident until the trim, and gone after it."""
    script = """
import json
import scene_r1.backend
from scene_r1.backend.tuning import release_freed_memory
import numpy as np
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 1e6
kept = np.ones(25_000_000)  # 200 MB, touched
del kept
before = rss()
done = release_freed_memory()
print(json.dumps({"before": before, "after": rss(), "done": done}))
"""
    if sys.platform != "linux":
        return
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OPENBLAS_", "MALLOC_"))}
    out = subprocess.run([sys.executable, "-c", script], env=clean, capture_output=True, text=True, timeout=120)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["done"] is True and found["after"] < found["before"] - 150
