"""Shared test fixtures. Tests run headless and read public data from $REGOLITH_DATA (default ../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = Path(os.environ.get("REGOLITH_DATA", ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"public data folder {path} is absent (set REGOLITH_DATA to its location)")
    return path
