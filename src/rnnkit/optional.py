"""Optional dependencies: imported where used, and a missing one is one line that says which
extra installs it (the command line turns the ValueError into `rnnkit: error: ...`, exit 2)."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str, purpose: str, alternative: str = "") -> ModuleType:
    """Import `module`, or raise ValueError: "<purpose> needs <package>: pip install
    'rnnkit[<extra>]'" followed by `alternative` (e.g. ", or pass --no-baseline")."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise ValueError(f"{purpose} needs {package}: pip install 'rnnkit[{extra}]'{alternative}") from None
