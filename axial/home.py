"""Where axial keeps what it downloads and converts: $AXIAL_HOME, default ~/.cache/axial."""

from __future__ import annotations

import os
from pathlib import Path


def axial_home() -> Path:
    return Path(os.environ.get("AXIAL_HOME", Path.home() / ".cache" / "axial"))
