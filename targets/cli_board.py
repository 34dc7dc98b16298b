"""``rover run``, ``rover flash`` and ``rover deploy``: the board commands. ``register(subparsers)`` adds
them to the ``rover`` parser (``targets.cli``).

    rover run --board rpi4|PROFILE.toml [--mission FILE] [--max-steps N]
    rover flash mcu --port PORT [--dry-run]
    rover deploy --board rpi4|PROFILE.toml --host USER@HOST [--init systemd|process|none] [--dry-run]
    rover deploy --stop --host USER@HOST [--init systemd|process] [--dry-run]

Exit codes: 0 success; 1 the run or a step failed; 2 bad input (a profile, a missing port, host or device).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from targets.board_profile import BoardError, board_names, load_board
from targets.flash import PlanError, Step, deploy_plan, flash_plan, run_plan, stop_plan

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_MISSION = "missions/waypoints.yaml"


def _cmd_run(args: argparse.Namespace) -> int:
    from autonomy.mission.mission_file import MissionError, load_mission
    from hw.interfaces import DeviceError
    from targets.board_run import StopRequested, run_on_board

    try:
        profile = load_board(args.board)
        mission = load_mission(args.mission)
    except BoardError as exc:
        print(*exc.problems, sep="\n", file=sys.stderr)
        return EXIT_BAD_INPUT
    except MissionError as exc:
        print(*exc.problems, sep="\n", file=sys.stderr)
        return EXIT_BAD_INPUT
    if profile.uses_sim:
        print(f"{profile.source}: board {profile.name!r} is simulated: use `rover sim run`", file=sys.stderr)
        return EXIT_BAD_INPUT

    def on_sigterm(signum: int, _frame: object) -> None:
        raise StopRequested(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, on_sigterm)  # `rover deploy --stop`, `systemctl stop`
    try:
        result = run_on_board(profile, mission, max_steps=args.max_steps, log=_log)
    except DeviceError as exc:
        print(f"rover run --board {profile.name}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StopRequested as exc:
        _log(f"stopped by {exc}: the MCU was sent a stop command")
        return EXIT_OK
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"{result.status.value}: {result.reason} ({result.steps} steps, {result.overruns} overruns)")
    return EXIT_OK if result.status.value == "completed" else EXIT_FAILED


def _log(line: str) -> None:
    print(line, flush=True)  # flushed: a detached run's log file shows each line as it happens


def _show(steps: list[Step]) -> None:
    for i, step in enumerate(steps, 1):
        print(f"{i:2d}. {step.render()}")
        if step.stdin:
            print("    " + step.stdin.replace("\n", "\n    "))


def _cmd_flash(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="regolith-mcu-") as tmp:
        build = Path(args.build_dir) if args.build_dir else Path(tmp)
        try:
            steps = flash_plan(args.port, build, check_port=not args.dry_run)
            if args.dry_run:
                _show(steps)
                return EXIT_OK
            run_plan(steps)
        except PlanError as exc:
            print(f"rover flash: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT if "not found" in str(exc) else EXIT_FAILED
    print(f"flashed the MCU on {args.port}")
    return EXIT_OK


def _cmd_deploy(args: argparse.Namespace) -> int:
    identity = Path(args.identity) if args.identity else None
    known = Path(args.known_hosts) if args.known_hosts else None
    if args.stop:
        try:
            steps = stop_plan(args.host, args.remote_dir, args.ssh_port, identity, init=args.init, known_hosts=known)
            if args.dry_run:
                _show(steps)
                return EXIT_OK
            out = run_plan(steps)
        except PlanError as exc:
            print(f"rover deploy --stop: {exc}", file=sys.stderr)
            return EXIT_FAILED
        print(f"{args.host}: {out[-1].strip()}")
        return EXIT_OK
    if not args.board:
        print("rover deploy: --board is required (a board name or a profile .toml)", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        load_board(args.board)
    except BoardError as exc:
        print(*exc.problems, sep="\n", file=sys.stderr)
        return EXIT_BAD_INPUT
    with tempfile.TemporaryDirectory(prefix="regolith-dist-") as tmp:
        try:
            steps = deploy_plan(
                args.board,
                args.host,
                args.mission,
                Path(tmp),
                remote_dir=args.remote_dir,
                port=args.ssh_port,
                identity=identity,
                install_deps=not args.no_deps,
                init=args.init,
                known_hosts=known,
                check_after_s=args.check_after,
            )
            if args.dry_run:
                _show(steps)
                return EXIT_OK
            out = run_plan(steps)
        except PlanError as exc:
            print(f"rover deploy: {exc}", file=sys.stderr)
            return EXIT_FAILED
    where = {
        "systemd": "it runs as the systemd user unit regolith.service",
        "process": f"{out[-1].strip()}",
        "none": "installed, not started (--init none)",
    }[args.init]
    print(f"deployed board {args.board} to {args.host}: {where}")
    if args.init != "none":
        print(f"stop it with: rover deploy --stop --host {args.host} --init {args.init}", end="")
        print(f" --remote-dir {args.remote_dir}" if args.remote_dir != "regolith" else "")
    return EXIT_OK


def register(subparsers: Any) -> None:
    """Add ``run``, ``flash`` and ``deploy`` to the ``rover`` sub-command parsers."""
    boards = ", ".join(board_names())
    p_run = subparsers.add_parser(
        "run",
        help="run the real stack on a board",
        description=_cmd_run.__doc__ or "Run the real stack on a board (drivers from the board profile).",
    )
    p_run.add_argument("--board", required=True, help=f"board profile name or .toml path ({boards})")
    p_run.add_argument("--mission", default=DEFAULT_MISSION, help="mission file (default %(default)s)")
    p_run.add_argument("--max-steps", type=int, default=None, help="stop after N control ticks")
    p_run.set_defaults(func=_cmd_run)

    p_flash = subparsers.add_parser(
        "flash",
        help="flash the MCU firmware (mpy-cross + mpremote)",
        description="Compile targets/mcu with mpy-cross, copy it with mpremote, reset.",
    )
    p_flash.add_argument("target", choices=["mcu"], help="what to flash")
    p_flash.add_argument("--port", required=True, help="serial port of the MCU, e.g. /dev/ttyACM0")
    p_flash.add_argument("--build-dir", default=None, help="keep the compiled image here")
    p_flash.add_argument("--dry-run", action="store_true", help="print every step, run nothing")
    p_flash.set_defaults(func=_cmd_flash)

    p_dep = subparsers.add_parser(
        "deploy",
        help="build, copy over SSH, install and start the stack on a board (or --stop it)",
        description="Build a wheel, copy it over SSH, install it into a venv on the board, start it (a systemd "
        "user unit, or a detached process on hosts without systemd) and check it still runs a few seconds later. "
        "Deploying again restarts it; --stop stops it.",
    )
    p_dep.add_argument("--board", default=None, help=f"board profile name or .toml path ({boards})")
    p_dep.add_argument("--host", required=True, help="user@host of the board")
    p_dep.add_argument("--ssh-port", type=int, default=22, help="SSH port (default %(default)s)")
    p_dep.add_argument("--identity", default=None, help="SSH private key")
    p_dep.add_argument("--mission", default=DEFAULT_MISSION, help="mission file to install (default %(default)s)")
    p_dep.add_argument("--remote-dir", default="regolith", help="install folder on the board (default ~/%(default)s)")
    p_dep.add_argument("--no-deps", action="store_true", help="install only the wheel (the board has the deps)")
    p_dep.add_argument(
        "--init",
        choices=["systemd", "process", "none"],
        default="systemd",
        help="systemd: enable and (re)start a user unit (default, boards); process: run it detached with "
        "setsid, regolith.pid and regolith.log in the remote folder (hosts without systemd; not restarted at "
        "boot); none: install only",
    )
    p_dep.add_argument(
        "--check-after", type=float, default=3.0, help="seconds after the start to check it still runs (%(default)s)"
    )
    p_dep.add_argument("--stop", action="store_true", help="stop the deployed stack (with the same --init)")
    p_dep.add_argument("--known-hosts", default=None, help="known_hosts file to use (accept-new)")
    p_dep.add_argument("--dry-run", action="store_true", help="print every step, run nothing")
    p_dep.set_defaults(func=_cmd_deploy)
