"""Importing ``geometry.core`` runs this first: every re-export below exists before the
target can be patched in ``core``."""

from . import aliases, api, logged, measure, shapes
from .core import *  # noqa: F403

__all__ = ["aliases", "api", "area", "logged", "measure", "shapes"]  # noqa: F405
