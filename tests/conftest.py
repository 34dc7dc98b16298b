"""Shared test fixtures. Tests run headless and read public data from $REGOLITH_DATA (default ../shared/data)."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

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


FIRMWARE_MODULES = (
    "app",
    "protocol",
    "cases",
    "drivers",
    "drivers.motors",
    "drivers.tool",
    "drivers.estop",
    "machine",
    "micropython",
    "main",
)


@contextmanager
def firmware_cases(with_stubs: bool) -> Iterator[ModuleType]:
    """Import the shared firmware test cases (tests/firmware/cases.py) with the firmware, the protocol and,
    if asked, the CPython stubs of ``machine``/``micropython`` on the path; undo it all afterwards."""
    paths = [ROOT / "targets" / "mcu", ROOT / "hw" / "link", ROOT / "tests" / "firmware"]
    if with_stubs:
        paths.append(ROOT / "tests" / "firmware" / "stubs")
    saved = list(sys.path)
    sys.path[:0] = [str(p) for p in paths]
    try:
        yield importlib.import_module("cases")
    finally:
        sys.path[:] = saved
        for name in FIRMWARE_MODULES:
            sys.modules.pop(name, None)
