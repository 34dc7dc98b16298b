"""Flashing the MCU and deploying the stack to a board, as explicit step plans.

``flash_plan`` compiles the firmware with mpy-cross, copies it with mpremote and resets the board;
``deploy_plan`` builds a wheel, copies it over SSH, installs it into a venv on the board with a systemd unit
and starts it. Every plan can be printed (``--dry-run``) before it runs; ``run_plan`` stops at the first
failing step with its command and output.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

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
        cmd = shlex.join(self.argv)
        where = f"cd {shlex.quote(str(self.cwd))} && " if self.cwd is not None else ""
        return f"{self.what}\n    $ {where}{cmd}" + ("\n    (stdin: systemd unit, see below)" if self.stdin else "")


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
) -> list[Step]:
    """Steps to build, copy, install and start the stack on ``host`` (``user@host``). ``remote_dir`` is relative
    to the remote home unless absolute. ``init="systemd"`` enables and starts a systemd user unit;
    ``init="none"`` installs the unit file but leaves starting it to the caller (hosts without systemd)."""
    if not host:
        raise PlanError("deploy: --host is required (user@host of the board)")
    if init not in ("systemd", "none"):
        raise PlanError(f"deploy: --init must be systemd or none, got {init!r}")
    opts = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
    if known_hosts is not None:
        opts += ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=accept-new"]
    if identity is not None:
        opts += ["-i", str(identity)]
    ssh = ["ssh", "-p", str(port), *opts]
    scp = ["scp", "-P", str(port), *opts]
    wheel = f"regolith-{version}-py3-none-any.whl"
    rdir = remote_dir if remote_dir.startswith("/") else f"$HOME/{remote_dir}"
    unit_dir = rdir if remote_dir.startswith("/") else "%h/" + remote_dir
    venv = f"{rdir}/venv"
    unit = UNIT.format(board=board, venv=f"{unit_dir}/venv", mission=f"{unit_dir}/{Path(mission).name}")
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
        Step("create the venv on the board", (*ssh, host, f"python3 -m venv --system-site-packages {venv}")),
        Step(
            "install the stack into the venv",
            (*ssh, host, f"{venv}/bin/pip install -q --force-reinstall{deps} {rdir}/{wheel}"),
        ),
        Step("check the installed stack imports", (*ssh, host, f"{venv}/bin/python -c 'import targets.cli_board'")),
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
    if init == "systemd":
        steps.append(
            Step(
                "start the stack",
                (*ssh, host, "systemctl --user daemon-reload && systemctl --user enable --now regolith.service"),
            )
        )
    return steps


def run_plan(steps: list[Step]) -> None:
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
