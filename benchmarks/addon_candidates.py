"""How often a language query through the Blender add-on selects exactly the referred objects, on
unseen Blender rooms (benchmarks/blender_rooms.py), headless at the add-on's default capture
settings, against a real `scene-r1 serve` with a shipped model (issue 18).

Run with Blender's Python (the backend runs in its own environment, SCENE_R1_BACKEND_PYTHON or
<repo>/.venv/bin/python):

    python -m scene_r1.benchmarks.addon_candidates                       # v1 (default) and v2
    python -m scene_r1.benchmarks.addon_candidates --models v2 --rooms 2
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "v1": ("scene-r1-nano (default)", []),
    "v2": (
        "scene-r1-nano-v2 --grounding candidates",
        ["--vlm", str(ROOT / "models" / "scene-r1-nano-v2"), "--grounding", "candidates"],
    ),
}


def free_address() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{probe.getsockname()[1]}"


def start_backend(arguments: list[str], health_timeout: float = 180.0):
    """`scene-r1 serve` on a free loopback port; returns (address, process) once it answers."""
    from ..shared.client import Client

    python = Path(os.environ.get("SCENE_R1_BACKEND_PYTHON", ROOT / ".venv" / "bin" / "python"))
    if not python.exists():
        raise SystemExit(f"no backend environment at {python}: set SCENE_R1_BACKEND_PYTHON")
    address = free_address()
    command = [str(python), "-m", "scene_r1.backend.cli", "serve", "--bind", address, *arguments]
    log = Path(tempfile.mkdtemp(prefix="scene-r1-serve-")) / "serve.log"
    with open(log, "w") as output:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        with Client(address, timeout=health_timeout, retries=0) as client:
            client.health()
    except Exception as error:
        process.kill()
        process.wait(10)
        raise SystemExit(f"the backend did not start ({error}); its output: {log}") from None
    return address, process


def rooms(count: int) -> list[tuple[int, bool]]:
    """(seed, generic names) of the rooms measured: half meaningful, half generic, seeds never used in tests."""
    return [(1000 + number, number % 2 == 1) for number in range(count)]


def measure(model: str, count: int, timeout: float) -> list[dict]:
    import bpy

    import scene_r1

    from ..addon import api
    from ..addon import preferences as addon_preferences
    from .blender_rooms import build_room

    address, process = start_backend(MODELS[model][1])
    rows = []
    try:
        for seed, generic in rooms(count):
            bpy.ops.wm.read_factory_settings(use_empty=True)
            queries = build_room(seed, generic)
            api.ensure_enabled()
            addon_preferences.get(bpy.context).timeout = timeout  # the model loads on the first query
            for query in queries:
                start = time.perf_counter()
                outcome = scene_r1.run(query.text, address=address, timeout=timeout)
                seconds = time.perf_counter() - start
                exact = outcome.state == "done" and sorted(outcome.selected) == sorted(query.referred)
                rows.append(
                    {
                        "model": model,
                        "generic": generic,
                        "seed": seed,
                        "query": query.text,
                        "referred": list(query.referred),
                        "selected": outcome.selected,
                        "state": outcome.state,
                        "exact": exact,
                        "seconds": seconds,
                    }
                )
                print(
                    f"  [{model} room {seed} {'generic' if generic else 'meaningful'}] {query.text!r}: "
                    f"{'EXACT' if exact else 'wrong'} selected {outcome.selected} (referred {list(query.referred)}), "
                    f"{seconds:.1f} s",
                    flush=True,
                )
    finally:
        process.kill()
        process.wait(10)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["model                                      names       exact / queries   share   s/query"]
    for model, (title, _) in MODELS.items():
        for generic in (False, True):
            part = [r for r in rows if r["model"] == model and r["generic"] == generic]
            if part:
                exact = sum(r["exact"] for r in part)
                seconds = sum(r["seconds"] for r in part) / len(part)
                names = "generic" if generic else "meaningful"
                lines.append(
                    f"{title:<42} {names:<11} {exact:>5} / {len(part):<9} {exact / len(part):>7.0%} {seconds:>8.1f}"
                )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=sorted(MODELS))
    parser.add_argument("--rooms", type=int, default=4, help="rooms per model (half with generic names)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one query may take")
    args = parser.parse_args(argv)
    rows = []
    for model in args.models:
        rows += measure(model, args.rooms, args.timeout)
    print(
        "Selected objects exactly the referred ones, add-on headless at default capture settings "
        "(targets of issue 18: 80% meaningful names, 60% generic):"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
