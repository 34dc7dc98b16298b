"""``rover eval``: score the estimator against ground truth.

    rover eval mrclam RUN ROBOT [--mode localization|slam] [--first-estimates-jacobians] [--out DIR] [--json]
                      [--data DIR]

``register(subparsers)`` adds the ``eval`` command and its sub-command parser; other ``eval``
sub-commands join through ``eval_subparsers(subparsers)`` (the same ``argparse`` object, created once):

    from targets import cli_eval
    ev = cli_eval.register(sub)          # in targets/cli.py's build_parser
    run = ev.add_parser("run", ...)       # e.g. targets/eval_run.py adds ``rover eval run RUN_DIR``

Exit codes: 0 every figure within its target, 1 a figure over its target, 2 bad input (missing data,
malformed file: ``FILE:LINE: reason`` on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

# Targets of issue 9 (ATE RMS, m): localization with surveyed landmarks, SLAM with unknown ones.
MRCLAM_TARGET_M = {"localization": 0.15, "slam": 0.30}

_EVAL_SUBPARSERS: dict[int, Any] = {}


def default_data_root() -> Path:
    """$REGOLITH_DATA/mrclam, else ../shared/data/mrclam next to the repository."""
    base = os.environ.get("REGOLITH_DATA")
    root = Path(base) if base else Path(__file__).resolve().parents[2] / "shared" / "data"
    return root / "mrclam"


def _cmd_eval_mrclam(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from targets.datasets.mrclam import MrclamFormatError, load_robot
    from targets.datasets.mrclam_replay import MRCLAM_PARAMS, plot_paths, replay

    root = Path(args.data) if args.data else default_data_root()
    try:
        log = load_robot(root, args.run, args.robot)
    except MrclamFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        params = replace(MRCLAM_PARAMS, first_estimates_jacobians=bool(args.first_estimates_jacobians))
        result = replay(log, args.mode, params=params)
    except ValueError as exc:  # e.g. no ground truth where the odometry starts
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    summary = result.summary()
    summary["first_estimates_jacobians"] = params.first_estimates_jacobians
    target = MRCLAM_TARGET_M[args.mode]
    # both targets apply as is: the start pose defines the map frame (the aligned ATE is reported beside)
    scored = result.ate_rms_m
    summary["target_ate_rms_m"] = target
    summary["scored_ate_rms_m"] = round(scored, 4)
    summary["within_target"] = bool(scored <= target)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        png = plot_paths(
            result,
            out / f"mrclam_run{args.run}_robot{args.robot}_{args.mode}.png",
            {lm.tag_id: (lm.x_m, lm.y_m) for lm in log.landmarks},
        )
        summary["plot"] = str(png)
        (out / f"mrclam_run{args.run}_robot{args.robot}_{args.mode}.json").write_text(
            json.dumps(summary, indent=2) + "\n", encoding="utf-8"
        )
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        line = (
            f"MRCLAM run {args.run} robot {args.robot} {args.mode}: ATE {result.ate_rms_m:.3f} m RMS "
            f"(aligned {result.ate_aligned_rms_m:.3f}), max {result.ate_max_m:.3f} m, target {target:.2f} m: "
            f"{'ok' if summary['within_target'] else 'OVER'}"
        )
        if result.map_error_m:
            m = result.map_error_m
            line += (
                f"; map {int(m['landmarks'])} landmarks, error {m['rms']:.3f} m RMS "
                f"({m.get('aligned_rms', float('nan')):.3f} aligned)"
            )
        if "plot" in summary:
            line += f" -> {summary['plot']}"
        print(line)
    return EXIT_OK if summary["within_target"] else EXIT_FAILED


def eval_subparsers(subparsers: Any) -> Any:
    """The ``eval`` command's sub-command parser (created on first use), for other ``eval`` commands."""
    key = id(subparsers)
    if key not in _EVAL_SUBPARSERS:
        ev = subparsers.add_parser(
            "eval",
            help="score the estimator against ground truth",
            description="Evaluate localization and mapping against ground truth.",
        )
        _EVAL_SUBPARSERS[key] = ev.add_subparsers(dest="eval_command", required=True, metavar="SUBCOMMAND")
    return _EVAL_SUBPARSERS[key]


def register(subparsers: Any) -> Any:
    """Add ``rover eval`` and ``rover eval mrclam``; returns the ``eval`` sub-command parser."""
    ev_sub = eval_subparsers(subparsers)
    mr = ev_sub.add_parser(
        "mrclam",
        help="replay a UTIAS MRCLAM robot through the landmark EKF",
        description="Replay run RUN (6 or 7), robot ROBOT (1-5) of the UTIAS MRCLAM data set: the commanded "
        "odometry and the range-bearing landmark observations through the landmark EKF, in localization "
        "(surveyed landmarks) or SLAM (unknown landmarks) mode. Prints ATE RMS/max against Vicon truth and "
        "the map error (SLAM); writes a PNG of the paths and a JSON summary with --out. Exit 0 within the "
        "target (0.15 m localization, 0.30 m SLAM, both as is: the start pose defines the map frame), 1 over it, 2 on "
        "bad input.",
    )
    mr.add_argument("run", type=int, help="MRCLAM run number (6 or 7 are in the shared data)")
    mr.add_argument("robot", type=int, choices=range(1, 6), metavar="ROBOT", help="robot 1-5")
    mr.add_argument("--mode", choices=["localization", "slam"], default="localization")
    mr.add_argument(
        "--first-estimates-jacobians",
        action="store_true",
        help="first-estimates Jacobians (a consistent EKF-SLAM: no spurious information on the map's global "
        "heading); off: the fleet parameter set as benchmarked",
    )
    mr.add_argument("--out", default=None, help="folder for the plot (PNG) and the JSON summary")
    mr.add_argument("--json", action="store_true", help="print the summary as JSON")
    mr.add_argument("--data", default=None, help="folder holding MRCLAM_DatasetN (default: $REGOLITH_DATA/mrclam)")
    mr.set_defaults(func=_cmd_eval_mrclam)
    return ev_sub
