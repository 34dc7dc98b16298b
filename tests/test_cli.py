"""The rover CLI: --help everywhere, mission check's exit codes and messages, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from targets.cli import main

HELP_PATHS = [
    [],
    ["sim"],
    ["sim", "run"],
    ["mission"],
    ["mission", "check"],
    ["mission", "plan"],
    ["bench"],
    ["eval"],
    ["eval", "run"],
    ["eval", "mrclam"],
]


@pytest.mark.parametrize("path", HELP_PATHS, ids=lambda p: " ".join(p) or "rover")
def test_help_on_every_command(path: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*path, "--help"])
    assert info.value.code == 0
    assert "usage: rover" in capsys.readouterr().out


def test_mission_check_ok(repo_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mission", "check", str(repo_root / "missions" / "waypoints.yaml")]) == 0
    assert "ok: mission 'waypoints'" in capsys.readouterr().out


def test_mission_check_broken_file_exit_2(tmp_path: Path, repo_root: Path) -> None:
    text = (repo_root / "missions" / "waypoints.yaml").read_text()
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        text.replace("tolerance_m: 0.25}\n  - {x_m: 5.0, y_m: 4.0", "tolerance_m: 0.25}\n  - {x_m: five, y_m: 4.0")
    )
    # a real process: the exit code and stderr a user sees, and no traceback
    proc = subprocess.run(
        [sys.executable, "-m", "targets.cli", "mission", "check", str(broken)],
        capture_output=True,
        text=True,
        cwd=repo_root,
        check=False,
    )
    assert proc.returncode == 2
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "x_m: 5.0, y_m: 4.0" in ln)
    assert proc.stderr.strip() == f"{broken}:{line}: waypoints[1].x_m: expected a number, got 'five'"
    assert "Traceback" not in proc.stderr


def test_sim_run_with_broken_mission_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.yaml"
    assert main(["sim", "run", str(missing), "--out", str(tmp_path / "out")]) == 2
    assert f"{missing}:1: (file): no such file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
