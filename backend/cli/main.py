"""`scene-r1`: the command line. Each command module registers its own parser and runs a thin
shell over plain functions; this module dispatches and turns errors into one line each."""

from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from pathlib import Path

from . import labelling, query, scenes, service, tools, training

COMMAND_MODULES = (scenes, query, service, training, tools, labelling)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scene-r1", description="Scene-R1: language-driven 3D scene reasoning over RGB-D video."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def anticipated_errors() -> tuple[type[BaseException], ...]:
    """What a user can cause (a bad file, flag, model id or backend): one line, exit 2."""
    from ...shared.camera import CameraError
    from ...shared.protocol import ProtocolError
    from ...shared.scene import SceneError
    from ..models.loading import ModelError
    from ..models.parsing import ParseError

    return SceneError, CameraError, ModelError, ParseError, ProtocolError, OSError, UnicodeError


def main(argv: list[str] | None = None) -> int:
    from ...shared.client import BackendError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except BackendError as error:  # the backend answered with an error, or nobody answered
        print(f"scene-r1 {args.command}: {error}", file=sys.stderr)
        return 4
    except anticipated_errors() as error:
        print(f"scene-r1 {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - a bug: say so in one line, keep the traceback in a log
        handle, name = tempfile.mkstemp(prefix="scene-r1-error-", suffix=".log")
        log = Path(name)
        with open(handle, "w", encoding="utf-8") as stream:
            stream.write(traceback.format_exc())
        print(
            f"scene-r1 {args.command}: internal error: {type(error).__name__}: {error} (traceback: {log})",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # `python -m scene_r1.backend.cli.main` as well as `-m scene_r1.backend.cli`
    sys.exit(main())
