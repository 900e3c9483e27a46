"""The layout is the architecture: these checks keep it so (no cycles, rooms that import only
inward, modules and functions small enough to read)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = ("shared", "addon", "backend", "benchmarks")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def source_files():
    for top in SOURCE_ROOTS:
        yield from sorted((ROOT / top).rglob("*.py"))
    yield ROOT / "__init__.py"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Project modules a file imports, anywhere in it (function-level imports count too)."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1] if node.level > 1 else package
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("scene_r1."):
            target = node.module.removeprefix("scene_r1.")
            candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
        else:
            continue
        out |= {c for c in candidates if c in known}
    out.discard(name)
    return out


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in source_files()}
    known = set(files)
    graph = {}
    for name, path in files.items():
        edges = set()
        for target in imported_modules(path, known):
            # importing a package runs its __init__: an edge to each package on the way
            parts = target.split(".")
            edges |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & known
        graph[name] = edges - {name} - {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize(
    "room, forbidden",
    [
        ("shared", ("addon", "backend", "benchmarks")),
        ("addon", ("backend", "benchmarks")),
        ("backend.geometry", ("backend.service", "backend.pipeline", "backend.models", "backend.cli")),
        ("backend", ("addon", "benchmarks")),
    ],
)
def test_dependencies_point_inward(room, forbidden):
    graph = import_graph()
    wrong = [
        (name, target)
        for name, targets in graph.items()
        if name == room or name.startswith(room + ".")
        for target in targets
        if any(target == f or target.startswith(f + ".") for f in forbidden)
    ]
    # the backend's CLI may run the benchmarks of a source checkout (by name, at run time)
    assert wrong == []


def test_modules_and_functions_are_small():
    too_long = []
    for path in source_files():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}(): {length} lines")
    assert too_long == []
