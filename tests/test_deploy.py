"""`rover deploy` against a real OpenSSH server on this machine's loopback (started by the test with its own
host key, client key and config; no mock). Skips with the reason when sshd is not installed."""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from targets import cli_board

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
