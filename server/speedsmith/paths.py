"""Where speedsmith keeps its own files: the one cache directory (results, models, locks)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$SPEEDSMITH_CACHE_DIR``, else the platform's user cache directory for speedsmith."""
    override = os.environ.get("SPEEDSMITH_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("speedsmith"))
