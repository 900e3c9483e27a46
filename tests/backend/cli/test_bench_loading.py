"""`scene-r1 bench`: "benchmarks live in the source checkout" only when the benchmarks package itself
is missing; a missing module a benchmark needs is named as such."""

import sys

import pytest

from scene_r1.backend.cli.tools import BENCHMARKS, load_benchmark
from scene_r1.shared.scene import SceneError

TARGET = BENCHMARKS["transport"][1]


def test_a_benchmark_loads():
    assert callable(load_benchmark("transport", TARGET))


def test_without_the_benchmarks_package(monkeypatch):
    for name in [m for m in sys.modules if m.startswith("scene_r1.benchmarks")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "scene_r1.benchmarks", None)  # as in an installed wheel: not there
    with pytest.raises(SceneError, match="source checkout"):
        load_benchmark("transport", TARGET)


def test_a_missing_dependency_is_named(monkeypatch):
    monkeypatch.delitem(sys.modules, "scene_r1.benchmarks.transport", raising=False)
    monkeypatch.setitem(sys.modules, "zmq", None)  # a module the benchmark imports, not installed
    with pytest.raises(SceneError, match="needs the module 'zmq'") as error:
        load_benchmark("transport", TARGET)
    assert "source checkout" not in str(error.value)
