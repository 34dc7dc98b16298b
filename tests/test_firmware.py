"""Firmware cases (tests/firmware/cases.py) under CPython with stubs of ``machine``, ``micropython`` and the
``time`` ticks API; the same cases run under real MicroPython in test_firmware_micropython.py."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from conftest import firmware_cases

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cases() -> Iterator[ModuleType]:
    with firmware_cases(with_stubs=True) as module:
        yield module


def _case_names() -> list[str]:
    text = (ROOT / "tests" / "firmware" / "cases.py").read_text()
    return sorted(line[4:].split("(")[0] for line in text.splitlines() if line.startswith("def case_"))


@pytest.mark.parametrize("name", _case_names())
def test_firmware_case_cpython(cases: ModuleType, name: str) -> None:
    getattr(cases, name)()


def test_main_wires_the_board_with_stub_machine(cases: ModuleType) -> None:
    main = importlib.import_module("main")
    main.time = cases.FakeClock()  # the ticks API of MicroPython's time module (CPython's has none)
    fw = main.build()
    assert fw.wdt.timeout == main.WDT_TIMEOUT_MS
    assert len(fw.encoders) == 4
    fw.step()  # one loop step on the stub board: feeds the watchdog, motors stay off
    assert fw.wdt.feeds == 1
