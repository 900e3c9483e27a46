"""`scene-r1`: the command line. `main` dispatches to one module per command."""

from .main import main

__all__ = ["main"]
