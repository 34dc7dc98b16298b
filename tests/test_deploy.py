"""`rover deploy` against a real OpenSSH server on this machine's loopback (started by the test with its own
host key, client key and config; no mock). Skips with the reason when sshd is not installed.

The start test deploys to a host without systemd (``--init process``) and checks the stack really runs there.
Its devices are provided at the hardware boundary only: the MCU is the real firmware running on this machine
behind a pseudo-terminal (``targets.hil.VirtualMcu``; the deployed stack opens it with pyserial), the camera
is a video file OpenCV decodes (a ``file`` camera, generated here), and the profile declares no IMU
(``imu.driver = "none"``). The board's Python packages (numpy, OpenCV, pyserial...: apt's python3-* on a real
board, seen through ``--system-site-packages``) are this machine's dev environment, made visible to the
board's venv by a ``.pth`` file the test writes before deploying with ``--no-deps``."""

from __future__ import annotations

import argparse
import getpass
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from targets import cli_board

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION = ROOT / "targets" / "boards" / "calibration" / "rpi-camera-v2-640x480.toml"

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)


def rover(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="rover")
    cli_board.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[tuple[str, int, Path, Path]]:
    if SSHD is None:
        pytest.skip("sshd not installed (apt-get install openssh-server): the deploy test needs a real SSH server")
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH client (ssh, scp, ssh-keygen) not installed")
    d = tmp_path / "sshd"
    d.mkdir()
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    port = _free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        f"PidFile {d / 'sshd.pid'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            if proc.poll() is not None:
                pytest.skip(f"sshd could not start here: {proc.stderr.read() if proc.stderr else ''}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"{getpass.getuser()}@127.0.0.1", port, d / "client_key", d / "known_hosts"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_deploy_installs_the_stack_over_real_ssh(sshd: tuple[str, int, Path, Path], tmp_path: Path) -> None:
    host, port, key, known = sshd
    board_dir = tmp_path / "board"
    rc = rover(
        [
            "deploy",
            "--board",
            "rpi4",
            "--host",
            host,
            "--ssh-port",
            str(port),
            "--identity",
            str(key),
            "--known-hosts",
            str(known),
            "--remote-dir",
            str(board_dir),
            "--no-deps",
            "--init",
            "none",
        ]
    )
    assert rc == 0
    venv_python = board_dir / "venv" / "bin" / "python"
    assert (board_dir / "regolith-0.1.0-py3-none-any.whl").is_file()
    assert (board_dir / "waypoints.yaml").is_file()
    code = "import targets.cli_board, hw.link.protocol as p; print(p.VERSION)"
    probe = subprocess.run([str(venv_python), "-c", code], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "1"
    unit = (board_dir / "systemd" / "regolith.service").read_text()
    assert f"ExecStart={board_dir}/venv/bin/rover run --board rpi4 --mission {board_dir}/waypoints.yaml" in unit


def test_deploy_to_a_host_that_does_not_answer_fails_clearly(
    sshd: tuple[str, int, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, key, known = sshd
    rc = rover(
        [
            "deploy",
            "--board",
            "rpi4",
            "--host",
            "nobody@127.0.0.1",
            "--ssh-port",
            str(_free_port()),
            "--identity",
            str(key),
            "--known-hosts",
            str(known),
            "--remote-dir",
            str(tmp_path / "b"),
        ]
    )
    assert rc == 1
    err = capsys.readouterr().err
    assert "step 2 (check the host answers over SSH) failed" in err
    assert "Connection refused" in err


def _ssh(host: str, port: int, key: Path, known: Path, command: str) -> subprocess.CompletedProcess[str]:
    argv = ["ssh", "-p", str(port), "-o", "BatchMode=yes", "-i", str(key), "-o", f"UserKnownHostsFile={known}"]
    argv += ["-o", "StrictHostKeyChecking=accept-new", host, command]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)


def _wait_for(what: str, cond: Callable[[], bool], timeout_s: float, log: Path) -> None:
    for _ in range(round(timeout_s / 0.2)):
        if cond():
            return
        time.sleep(0.2)
    text = log.read_text() if log.exists() else "(no log)"
    raise AssertionError(f"{what}: not within {timeout_s:g} s; the stack's log:\n{text[-3000:]}")


def _bench_profile(folder: Path, port: str) -> Path:
    """A board profile for this machine: the virtual MCU's pty, a recorded camera, no IMU (said explicitly)."""
    cv2 = pytest.importorskip("cv2")
    import numpy as np

    folder.mkdir(parents=True)
    writer = cv2.VideoWriter(str(folder / "drive.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (640, 480))
    if not writer.isOpened():
        pytest.skip("this OpenCV cannot write MJPG video (FFmpeg)")
    for i in range(20):
        frame = np.full((480, 640, 3), 60 + 5 * i, np.uint8)
        cv2.rectangle(frame, (100 + 10 * i, 150), (220 + 10 * i, 270), (255, 255, 255), -1)
        writer.write(frame)
    writer.release()
    shutil.copyfile(CALIBRATION, folder / "camera.toml")
    profile = folder / "benchrig.toml"
    profile.write_text(
        '[board]\nname = "benchrig"\ndescription = "this machine: virtual MCU on a pty, recorded camera, no IMU"\n'
        "[loop]\ncontrol_hz = 20.0\nperception_hz = 5.0\n"
        '[camera]\ndriver = "file"\ndevice = "drive.avi"\nloop = true\nwidth = 640\nheight = 480\nfps = 10\n'
        'calibration = "camera.toml"\n'
        '[imu]\ndriver = "none"\n'
        f'[mcu]\ndriver = "serial"\nport = "{port}"\nbaud = 1000000\ncounts_per_rad = 95.5\n'
        "[drive]\nwheel_radius_m = 0.15\ntrack_width_m = 0.6\n"
    )
    return profile


def _alive(pid: int) -> bool:
    try:
        return " run --board " in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False


@pytest.mark.slow  # two deploys and a running stack: ~30-45 s on a shared 2-core machine
def test_deploy_starts_the_stack_without_systemd_and_stop_stops_it(
    sshd: tuple[str, int, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("serial", reason="pyserial is needed (the board extra)")
    from targets.hil import VirtualMcu

    host, port, key, known = sshd
    board_dir = tmp_path / "board"
    # The board's system packages: its venv (made by its python3 over SSH, as the deploy will) sees this
    # machine's dev environment through a .pth file. Needs the same Python minor version (compiled wheels).
    probe = _ssh(
        host,
        port,
        key,
        known,
        f"python3 -m venv --system-site-packages {board_dir}/venv && "
        "python3 -c 'import sys; print(sys.version_info[0], sys.version_info[1])'",
    )
    assert probe.returncode == 0, probe.stderr
    if probe.stdout.split() != [str(sys.version_info[0]), str(sys.version_info[1])]:
        pytest.skip(f"the host's python3 is {probe.stdout.strip()}, the dev environment's is {sys.version_info[:2]}")
    (site,) = (board_dir / "venv" / "lib").glob("python3.*/site-packages")
    (site / "zz-board-system-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    with VirtualMcu() as mcu:
        profile = _bench_profile(tmp_path / "profile", mcu.port)
        common = ["--host", host, "--ssh-port", str(port), "--identity", str(key), "--known-hosts", str(known)]
        common += ["--remote-dir", str(board_dir)]
        rc = rover(["deploy", "--board", str(profile), *common, "--no-deps", "--init", "process", "--check-after", "3"])
        out, err = capsys.readouterr()
        log = board_dir / "regolith.log"
        assert rc == 0, err + (log.read_text() if log.exists() else "")
        assert "running as PID" in out and "rover deploy --stop" in out
        pid = int((board_dir / "regolith.pid").read_text())
        assert _alive(pid)
        # the profile and the files it names were copied next to the stack
        assert (board_dir / "boards" / "benchrig.toml").is_file() and (board_dir / "boards" / "drive.avi").is_file()

        # the started stack runs its loop: its log shows ticks, the firmware behind the pty gets drive commands
        def ticks() -> list[int]:
            return [int(m) for m in re.findall(r"^tick (\d+) ", log.read_text(), re.MULTILINE)]

        _wait_for("two tick lines in the log", lambda: len(ticks()) >= 2, 90.0, log)
        _wait_for("drive frames at the firmware", lambda: mcu.drive_frames() >= 20, 30.0, log)
        text = log.read_text()
        assert "board benchrig: mission 'waypoints' at 20 Hz" in text
        assert "imu.driver = none" in text  # the absent IMU is said, not hidden
        assert "stop=stale imu" in text  # ... and the pipeline holds the rover still without it
        assert "camera=yes" in text  # frames from the recording reach the pipeline
        assert ticks()[-1] > ticks()[0]
        assert mcu.last_drive_mradps == (0, 0)
        assert mcu.mcu.firmware.parser.errors() == 0

        # deploying again restarts it: the old run is stopped (SIGTERM), a new one runs
        rc = rover(["deploy", "--board", str(profile), *common, "--no-deps", "--init", "process", "--check-after", "1"])
        out, err = capsys.readouterr()
        assert rc == 0, err + log.read_text()
        old_pid, pid = pid, int((board_dir / "regolith.pid").read_text())
        assert pid != old_pid and _alive(pid) and not _alive(old_pid)
        assert log.read_text().count("== start ") == 2 and "stopped by SIGTERM" in log.read_text()
        _wait_for("a tick line from the new run", lambda: log.read_text().count("tick 1 ") == 2, 60.0, log)

        # --stop: SIGTERM, the stack sends the MCU a stop and exits; nothing runs any more
        rc = rover(["deploy", "--stop", *common, "--init", "process"])
        out, err = capsys.readouterr()
        assert rc == 0, err
        assert f"stopped {pid}" in out
        assert not _alive(pid) and not (board_dir / "regolith.pid").exists()
        assert log.read_text().count("stopped by SIGTERM") == 2
        frames = mcu.drive_frames()
        time.sleep(0.5)
        assert mcu.drive_frames() == frames  # no more commands: the firmware's expiry holds the wheels
        assert rover(["deploy", "--stop", *common, "--init", "process"]) == 0
        assert "not running" in capsys.readouterr().out
