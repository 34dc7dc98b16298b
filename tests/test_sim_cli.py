"""The sim CLI handlers (wired into ``rover sim`` by targets/cli.py) and the keyboard mapping."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from sim.cli_sim import (
    KEY_DIG,
    KEY_DUMP,
    KEY_IS_DOWN,
    KEY_LEFT,
    KEY_QUIT,
    KEY_SLOW,
    KEY_UP,
    KEY_WAS_TRIGGERED,
    keys_to_intent,
    register,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rover sim")
    register(parser.add_subparsers(dest="sim_command", required=True))
    return parser


def test_keyboard_mapping() -> None:
    assert keys_to_intent({}, 0.3) == keys_to_intent({}, 0.3)
    idle = keys_to_intent({}, 0.3)
    assert (idle.linear_x_mps, idle.angular_z_radps, idle.tool_rad, idle.quit) == (0.0, 0.0, 0.3, False)
    go = keys_to_intent({KEY_UP: KEY_IS_DOWN, KEY_LEFT: KEY_IS_DOWN}, 0.0)
    assert go.linear_x_mps > 0 and go.angular_z_radps > 0
    slow = keys_to_intent({KEY_UP: KEY_IS_DOWN, KEY_SLOW: KEY_IS_DOWN}, 0.0)
    assert 0 < slow.linear_x_mps < go.linear_x_mps
    assert keys_to_intent({KEY_DIG: KEY_WAS_TRIGGERED}, 0.0).tool_rad > 0.5
    assert keys_to_intent({KEY_DUMP: KEY_WAS_TRIGGERED}, 0.0).tool_rad < -0.5
    assert keys_to_intent({KEY_QUIT: KEY_WAS_TRIGGERED}, 0.0).quit


def test_help_and_drive_needs_gui(capsys: pytest.CaptureFixture[str]) -> None:
    parser = _parser()
    for cmd in ("judge", "drive", "dig-demo"):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([cmd, "--help"])
        assert exc.value.code == 0
    args = parser.parse_args(["drive"])
    assert args.func(args) == 2


def test_dig_demo_then_judge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = _parser()
    args = parser.parse_args(["dig-demo", "--out", str(tmp_path)])
    assert args.func(args) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key in ("berm_volume_cm3", "contacts", "cycles_completed", "energy_wh", "score"):
        assert key in summary
    assert (tmp_path / "scene.png").stat().st_size > 10_000
    capsys.readouterr()
    args = parser.parse_args(["judge", str(tmp_path)])
    assert args.func(args) == 0
    judged = json.loads(capsys.readouterr().out)
    assert judged["berm_volume_cm3"] == pytest.approx(summary["berm_volume_cm3"])
    args = parser.parse_args(["judge", str(tmp_path / "missing")])
    assert args.func(args) == 2
