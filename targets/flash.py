"""Flashing the MCU and deploying the stack to a board, as explicit step plans.

``flash_plan`` compiles the firmware with mpy-cross, copies it with mpremote and resets the board;
``deploy_plan`` builds a wheel, copies it over SSH, installs it into a venv on the board and starts it (a
systemd user unit, or a detached process on hosts without systemd); ``stop_plan`` stops it. Every plan can be
printed (``--dry-run``) before it runs; ``run_plan`` stops at the first failing step with its command and
output.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from targets.board_profile import load_board
from targets.mcu_image import firmware_sources, mpy_cross_command

ROOT = Path(__file__).resolve().parents[1]


class PlanError(RuntimeError):
    """A plan could not be made (a missing port or host) or one of its steps failed."""


@dataclass(frozen=True, slots=True)
class Step:
    what: str
    argv: tuple[str, ...]
    stdin: str | None = None
    cwd: Path | None = None

    def render(self) -> str:
        """The step for a human: an ssh step shows its remote command unquoted on a line of its own."""
        argv, remote = self.argv, ""
        if argv[0] == "ssh":
            argv, remote = argv[:-1], f"\n      on {argv[-2]}: {argv[-1]}"
        cmd = shlex.join(argv)
        where = f"cd {shlex.quote(str(self.cwd))} && " if self.cwd is not None else ""
        stdin = "\n    (stdin: systemd unit, see below)" if self.stdin else ""
        return f"{self.what}\n    $ {where}{cmd}{remote}{stdin}"


def flash_plan(port: str, build_dir: Path, *, check_port: bool = True) -> list[Step]:
    if check_port and not Path(port).exists():
        raise PlanError(f"flash: serial port {port!r} not found (is the board plugged in? try `mpremote devs`)")
    steps: list[Step] = []
    cross = mpy_cross_command()
    for src, dest in firmware_sources():
        if dest in ("main.py", "boot.py") or dest.endswith("__init__.py"):
            out = build_dir / dest
            steps.append(Step(f"check {dest} compiles", (*cross, "-o", str(build_dir / ".check.mpy"), str(src))))
            steps.append(Step(f"stage {dest}", ("install", "-D", "-m", "644", str(src), str(out))))
        else:
            out = (build_dir / dest).with_suffix(".mpy")
            steps.append(Step(f"compile {dest}", ("mkdir", "-p", str(out.parent))))
            steps.append(Step(f"compile {dest}", (*cross, "-o", str(out), str(src))))
    steps.append(Step("remove the syntax-check scratch file", ("rm", "-f", str(build_dir / ".check.mpy"))))
    mpremote = ("mpremote", "connect", port)
    top = sorted({dest.split("/")[0] if "/" in dest else _built_name(dest) for _, dest in firmware_sources()})
    steps.append(Step("copy the image to the MCU filesystem", (*mpremote, "fs", "cp", "-r", *top, ":"), cwd=build_dir))
    steps.append(Step("reset the MCU (main.py starts the firmware)", (*mpremote, "reset")))
    return steps


def _built_name(dest: str) -> str:
    return dest if dest in ("main.py", "boot.py") else dest[:-3] + ".mpy"


UNIT = """[Unit]
Description=Regolith rover stack ({board})
After=network-online.target

[Service]
Type=simple
ExecStart={venv}/bin/rover run --board {board} --mission {mission}
Restart=on-failure
RestartSec=2

[Install]
WantedBy=default.target
"""

INIT_SYSTEMS = ("systemd", "process", "none")
PID_FILE = "regolith.pid"
LOG_FILE = "regolith.log"


def _alive_fn() -> str:
    """Shell function ``alive PID``: true when PID is a live ``rover run`` (its cmdline says so; a zombie
    has none, and a recycled PID belongs to another program)."""
    return "alive() { tr '\\0' ' ' < /proc/$1/cmdline 2>/dev/null | grep -q -- ' run --board '; }; "


def _stop_process_cmd(rdir: str, grace_s: float = 10.0) -> str:
    """Stop the ``rover run`` named by the pid file: SIGTERM (the stack sends the MCU a stop and closes its
    ports), then SIGKILL if it is still there after ``grace_s``. Prints what it did."""
    pid, tries = f"{rdir}/{PID_FILE}", max(1, round(grace_s * 10))
    return (
        _alive_fn() + f'p=$(cat {pid} 2>/dev/null); if [ -n "$p" ] && alive "$p"; then kill -TERM "$p"; i=0; '
        f'while alive "$p" && [ $i -lt {tries} ]; do sleep 0.1; i=$((i+1)); done; '
        f'if alive "$p"; then kill -KILL "$p"; echo "killed $p (still running {grace_s:g} s after SIGTERM)"; '
        f'else echo "stopped $p"; fi; else echo "not running"; fi; rm -f {pid}'
    )


def _ssh_base(port: int, identity: Path | None, known_hosts: Path | None) -> tuple[list[str], list[str]]:
    opts = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
    if known_hosts is not None:
        opts += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=accept-new"]
    if identity is not None:
        opts += ["-i", str(identity)]
    return ["ssh", "-p", str(port), *opts], ["scp", "-P", str(port), *opts]


def _remote_dirs(remote_dir: str) -> tuple[str, str]:
    """(folder for shell commands, folder for the systemd unit): ``$HOME/x`` and ``%h/x`` when relative."""
    if remote_dir.startswith("/"):
        return remote_dir, remote_dir
    return f"$HOME/{remote_dir}", "%h/" + remote_dir


def _board_files(board: str) -> tuple[str, list[tuple[Path, str]]]:
    """(the ``--board`` argument on the board, [(local file, path relative to the remote folder)]).

    A shipped board is a name: the wheel carries its profile. A profile given as a path is copied to
    ``boards/NAME.toml`` with the files it names relative to its folder (kept at the same relative place);
    a file it names outside its folder must already be on the board at that absolute path."""
    if not board.endswith(".toml"):
        return board, []
    profile = load_board(board)  # BoardError: reported by the caller
    here = profile.source.absolute().parent
    files = [(profile.source, f"boards/{profile.source.name}")]
    for f in profile.referenced_files():
        try:
            rel = f.relative_to(here)
        except ValueError:
            continue  # an absolute path outside the profile's folder: checked on the board, not copied
        files.append((f, f"boards/{rel.as_posix()}"))
    return f"boards/{profile.source.name}", files


def deploy_plan(
    board: str,
    host: str,
    mission: str,
    dist_dir: Path,
    remote_dir: str = "regolith",
    port: int = 22,
    identity: Path | None = None,
    version: str = "0.1.0",
    *,
    install_deps: bool = True,
    init: str = "systemd",
    known_hosts: Path | None = None,
    check_after_s: float = 3.0,
) -> list[Step]:
    """Steps to build, copy, install and start the stack on ``host`` (``user@host``). ``remote_dir`` is relative
    to the remote home unless absolute. ``board`` is a shipped profile's name or a profile's ``.toml`` path
    (copied along with the files it names).

    ``init`` says how the stack is started:
    - ``systemd`` (boards): installs a systemd user unit, enables it, (re)starts it, and checks after
      ``check_after_s`` that it is active (else prints its journal);
    - ``process`` (hosts without systemd): stops a previous run named by ``regolith.pid``, starts
      ``rover run`` detached (``setsid``, stdin from /dev/null, output appended to ``regolith.log``, its PID in
      ``regolith.pid``, both in the remote folder), and checks after ``check_after_s`` that it is still alive
      (else prints the log's tail). Not restarted at boot or after a crash;
    - ``none``: installs the unit file and starts nothing."""
    if not host:
        raise PlanError("deploy: --host is required (user@host of the board)")
    if init not in INIT_SYSTEMS:
        raise PlanError(f"deploy: --init must be one of {', '.join(INIT_SYSTEMS)}, got {init!r}")
    if not check_after_s >= 0:
        raise PlanError(f"deploy: --check-after must be >= 0 s, got {check_after_s!r}")
    ssh, scp = _ssh_base(port, identity, known_hosts)
    wheel = f"regolith-{version}-py3-none-any.whl"
    rdir, unit_dir = _remote_dirs(remote_dir)
    venv = f"{rdir}/venv"
    board_arg, board_files = _board_files(board)
    unit_board = board_arg if not board_files else f"{unit_dir}/{board_arg}"
    run_board = board_arg if not board_files else f"{rdir}/{board_arg}"
    mission_name = Path(mission).name
    unit = UNIT.format(board=unit_board, venv=f"{unit_dir}/venv", mission=f"{unit_dir}/{mission_name}")
    deps = "" if install_deps else " --no-index --no-deps"
    steps = [
        Step(
            "build the wheel", (sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist_dir), str(ROOT))
        ),
        Step("check the host answers over SSH", (*ssh, host, "true")),
        Step("make the remote folder", (*ssh, host, f"mkdir -p {rdir}")),
        Step(
            "copy the wheel and the mission",
            (*scp, str(dist_dir / wheel), str(ROOT / mission), f"{host}:{remote_dir}/"),
        ),
    ]
    if board_files:
        folders = sorted({str(Path(rel).parent) for _, rel in board_files})
        steps.append(
            Step("make the board profile folders", (*ssh, host, "mkdir -p " + " ".join(f"{rdir}/{d}" for d in folders)))
        )
        for local, rel in board_files:
            dest = f"{host}:{remote_dir}/{rel}" if not local.is_dir() else f"{host}:{remote_dir}/{Path(rel).parent}/"
            flags = ("-r",) if local.is_dir() else ()
            steps.append(Step(f"copy {rel}", (*scp, *flags, str(local), dest)))
    steps += [
        Step("create the venv on the board", (*ssh, host, f"python3 -m venv --system-site-packages {venv}")),
        Step(
            "install the stack into the venv",
            (*ssh, host, f"{venv}/bin/pip install -q --force-reinstall{deps} {rdir}/{wheel}"),
        ),
        Step("check the installed stack imports", (*ssh, host, f"{venv}/bin/python -c 'import targets.cli_board'")),
        Step(
            "check the board profile loads on the board",
            (
                *ssh,
                host,
                f"cd {rdir} && {venv}/bin/python -c 'import sys; from targets.board_profile import "
                f"load_board; load_board(sys.argv[1])' {run_board}",
            ),
        ),
        Step(
            "install the systemd user unit",
            (
                *ssh,
                host,
                f"mkdir -p {rdir}/systemd .config/systemd/user && "
                f"cat > {rdir}/systemd/regolith.service && "
                f"cp {rdir}/systemd/regolith.service .config/systemd/user/",
            ),
            stdin=unit,
        ),
    ]
    wait = f"sleep {check_after_s:g}; " if check_after_s > 0 else ""
    if init == "systemd":
        steps.append(
            Step(
                "start (or restart) the stack",
                (
                    *ssh,
                    host,
                    "systemctl --user daemon-reload && systemctl --user enable regolith.service && "
                    "systemctl --user restart regolith.service",
                ),
            )
        )
        steps.append(
            Step(
                f"check the stack still runs after {check_after_s:g} s",
                (
                    *ssh,
                    host,
                    f"{wait}systemctl --user is-active --quiet regolith.service || "
                    "{ journalctl --user -u regolith.service -n 30 --no-pager >&2; exit 1; }",
                ),
            )
        )
    elif init == "process":
        pid, log = f"{rdir}/{PID_FILE}", f"{rdir}/{LOG_FILE}"
        run = f"exec {venv}/bin/rover run --board {run_board} --mission {rdir}/{mission_name}"
        steps.append(Step("stop a previous run (regolith.pid)", (*ssh, host, _stop_process_cmd(rdir))))
        steps.append(
            Step(
                "start the stack detached (setsid; log regolith.log, pid regolith.pid)",
                (
                    *ssh,
                    host,
                    f'cd {rdir} && echo "== start $(date -u +%Y-%m-%dT%H:%M:%SZ)" >> {log} && '
                    f"{{ setsid sh -c 'echo $$ > {pid}; {run}' >> {log} 2>&1 < /dev/null & }}",
                ),
            )
        )
        steps.append(
            Step(
                f"check the stack still runs after {check_after_s:g} s",
                (
                    *ssh,
                    host,
                    f"{wait}" + _alive_fn() + f'p=$(cat {pid} 2>/dev/null); if [ -n "$p" ] && alive "$p"; then '
                    f'echo "running as PID $p, log {log}"; else echo "the stack is not running; end of {log}:" >&2; '
                    f"tail -n 30 {log} >&2; exit 1; fi",
                ),
            )
        )
    return steps


def stop_plan(
    host: str,
    remote_dir: str = "regolith",
    port: int = 22,
    identity: Path | None = None,
    *,
    init: str = "systemd",
    known_hosts: Path | None = None,
) -> list[Step]:
    """Steps to stop the deployed stack: ``systemd`` stops and disables the user unit (it does not start at
    the next boot); ``process`` sends SIGTERM to the run named by ``regolith.pid`` (SIGKILL after 10 s)."""
    if not host:
        raise PlanError("deploy --stop: --host is required (user@host of the board)")
    if init not in ("systemd", "process"):
        raise PlanError(f"deploy --stop: --init must be systemd or process, got {init!r}")
    ssh, _ = _ssh_base(port, identity, known_hosts)
    rdir, _ = _remote_dirs(remote_dir)
    if init == "systemd":
        cmd = "systemctl --user disable --now regolith.service && echo stopped regolith.service"
        return [Step("stop and disable the systemd user unit", (*ssh, host, cmd))]
    return [Step("stop the stack (SIGTERM, then SIGKILL after 10 s)", (*ssh, host, _stop_process_cmd(rdir)))]


def run_plan(steps: list[Step]) -> list[str]:
    """Run the steps in order; returns each step's standard output. Raises ``PlanError`` at the first failure
    (its number, what it was, the command, and what it printed)."""
    outputs: list[str] = []
    for i, step in enumerate(steps, 1):
        exe = shutil.which(step.argv[0]) or (step.argv[0] if Path(step.argv[0]).is_file() else None)
        if exe is None:
            raise PlanError(f"step {i} ({step.what}): {step.argv[0]!r} is not installed")
        proc = subprocess.run(step.argv, input=step.stdin, capture_output=True, text=True, check=False, cwd=step.cwd)
        if proc.returncode != 0:
            raise PlanError(
                f"step {i} ({step.what}) failed with exit {proc.returncode}: {shlex.join(step.argv)}\n"
                f"{(proc.stderr or proc.stdout).strip()}"
            )
        outputs.append(proc.stdout)
    return outputs
