"""Importing ``geometry.core`` runs this first: every re-export below exists before the
target can be patched in ``core``."""

from . import aliases, api, logged, shapes
from .core import *  # noqa: F403

__all__ = ["aliases", "api", "area", "logged", "shapes"]  # noqa: F405
