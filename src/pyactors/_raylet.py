"""``from ray._raylet import ObjectRefGenerator`` appears in Ray's own documentation: the same
import works from ``pyactors._raylet``."""

from ._core import ObjectRefGenerator

__all__ = ["ObjectRefGenerator"]
