"""``rover eval run RUN_DIR``: localization error (ATE, RPE) of a run folder against the simulator's truth.

Reads ``RUN_DIR/run.mcap`` (written by ``targets.run_folder.write_mcap``): for each rover, the channels
``/{rover_id}/pose/ground_truth`` and ``/{rover_id}/pose/estimate`` (JSON ``foxglove.PoseInFrame`` in ``map``).
Samples are matched by log time. Metrics (pure maths in ``autonomy.runtime.metrics``):

- ATE: RMS and max of the position error in the map frame as is (no alignment: the map frame is surveyed),
  the same figures as the run summary's ``localization_ate_m`` / ``localization_max_error_m``;
- RPE over segments of 1 m and 5 m travelled (by default): translation (m) and rotation (deg) drift, SE(2).

Prints a summary (or JSON with ``--json``) and writes ``RUN_DIR/eval.png`` (paths, error over time, RPE).
Exit codes: 0 ok; 2 bad input (no folder, no ``run.mcap``, no pose channels, a malformed message).

``register_run(eval_subparsers)`` adds the ``run`` subcommand to the ``rover eval`` parser.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from autonomy.runtime.metrics import (
    absolute_trajectory_error,
    position_errors_m,
    relative_pose_error,
    relative_pose_errors,
)

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
DEFAULT_SEGMENTS_M = (1.0, 5.0)
TRUTH_SUFFIX = "/pose/ground_truth"
ESTIMATE_SUFFIX = "/pose/estimate"

FloatArray = npt.NDArray[np.float64]


class RunEvalError(ValueError):
    """The run folder cannot be evaluated (message: ``PATH: reason``)."""


@dataclass(frozen=True, slots=True)
class RunPoses:
    """Matched samples of one rover: time (s), true and estimated (x_m, y_m, yaw_rad), each (N, 3)."""

    rover_id: str
    t_s: FloatArray
    true_pose: FloatArray
    est_pose: FloatArray


def _pose_from_json(data: bytes, where: str) -> tuple[float, float, float]:
    try:
        msg = json.loads(data)
        pos = msg["pose"]["position"]
        q = msg["pose"]["orientation"]
        x, y = float(pos["x"]), float(pos["y"])
        qx, qy, qz, qw = float(q["x"]), float(q["y"]), float(q["z"]), float(q["w"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RunEvalError(f"{where}: not a foxglove.PoseInFrame JSON message ({type(exc).__name__}: {exc})") from exc
    yaw = math.atan2(2.0 * (qw * qz + qx * qy), 1.0 - 2.0 * (qy * qy + qz * qz))
    if not all(math.isfinite(v) for v in (x, y, yaw)):
        raise RunEvalError(f"{where}: non-finite pose ({x}, {y}, {yaw})")
    return x, y, yaw


def read_run_poses(mcap_path: str | Path, rover_id: str | None = None) -> dict[str, RunPoses]:
    """Every rover's (or ``rover_id``'s) matched true/estimated poses from a run's ``run.mcap``."""
    from mcap.exceptions import McapError
    from mcap.reader import make_reader

    path = Path(mcap_path)
    if not path.is_file():
        raise RunEvalError(f"{path}: not found (a run folder from `rover sim run` holds run.mcap)")
    series: dict[str, dict[int, tuple[float, float, float]]] = {}
    try:
        with path.open("rb") as f:
            reader = make_reader(f)
            for _, channel, message in reader.iter_messages():
                topic = channel.topic
                if not (topic.endswith(TRUTH_SUFFIX) or topic.endswith(ESTIMATE_SUFFIX)):
                    continue
                if channel.message_encoding != "json":
                    raise RunEvalError(f"{path}: {topic}: encoding {channel.message_encoding!r}, expected 'json'")
                where = f"{path}: {topic} at log time {message.log_time} ns"
                series.setdefault(topic, {})[message.log_time] = _pose_from_json(message.data, where)
    except McapError as exc:
        raise RunEvalError(f"{path}: not a readable MCAP file ({exc})") from exc
    rovers = sorted({t[1 : -len(TRUTH_SUFFIX)] for t in series if t.endswith(TRUTH_SUFFIX) and t.startswith("/")})
    if rover_id is not None:
        if rover_id not in rovers:
            raise RunEvalError(f"{path}: no channel /{rover_id}{TRUTH_SUFFIX} (rovers in the log: {rovers or 'none'})")
        rovers = [rover_id]
    if not rovers:
        raise RunEvalError(f"{path}: no /ROVER{TRUTH_SUFFIX} channel (channels with poses: {sorted(series) or 'none'})")
    out: dict[str, RunPoses] = {}
    for rid in rovers:
        truth = series.get(f"/{rid}{TRUTH_SUFFIX}", {})
        est = series.get(f"/{rid}{ESTIMATE_SUFFIX}", {})
        if not est:
            raise RunEvalError(f"{path}: /{rid}{TRUTH_SUFFIX} has no matching /{rid}{ESTIMATE_SUFFIX} channel")
        stamps = sorted(set(truth) & set(est))
        if not stamps:
            raise RunEvalError(f"{path}: /{rid}: no ground-truth and estimate samples share a log time")
        out[rid] = RunPoses(
            rid,
            np.asarray(stamps, dtype=np.float64) * 1e-9,
            np.asarray([truth[s] for s in stamps], dtype=np.float64),
            np.asarray([est[s] for s in stamps], dtype=np.float64),
        )
    return out


def _finite_or_none(v: float, ndigits: int) -> float | None:
    return round(v, ndigits) if math.isfinite(v) else None


def evaluate_poses(poses: RunPoses, segments_m: tuple[float, ...] = DEFAULT_SEGMENTS_M) -> dict[str, Any]:
    """JSON-able ATE/RPE figures of one rover (RPE entries are None when the run is shorter than a segment)."""
    ate, max_err = absolute_trajectory_error(poses.true_pose[:, :2], poses.est_pose[:, :2])
    steps = np.hypot(*np.diff(poses.true_pose[:, :2], axis=0).T)
    rpe = []
    for seg in segments_m:
        r = relative_pose_error(poses.true_pose, poses.est_pose, seg)
        rpe.append(
            {
                "segment_m": seg,
                "pairs": r.pairs,
                "trans_rms_m": _finite_or_none(r.trans_rms_m, 4),
                "trans_max_m": _finite_or_none(r.trans_max_m, 4),
                "trans_rms_pct": _finite_or_none(100.0 * r.trans_rms_m / seg, 2),
                "rot_rms_deg": _finite_or_none(math.degrees(r.rot_rms_rad), 3),
                "rot_max_deg": _finite_or_none(math.degrees(r.rot_max_rad), 3),
            }
        )
    return {
        "rover_id": poses.rover_id,
        "samples": int(poses.t_s.size),
        "duration_s": round(float(poses.t_s[-1] - poses.t_s[0]), 3),
        "path_length_m": round(float(steps.sum()), 3),
        "localization_ate_m": round(ate, 4),
        "localization_max_error_m": round(max_err, 4),
        "rpe": rpe,
    }


def plot_eval(path: Path, poses: RunPoses, segments_m: tuple[float, ...], title: str) -> None:
    """Paths (truth vs estimate), position error over time and RPE translation error per segment start."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    true, est, t = poses.true_pose, poses.est_pose, poses.t_s
    err = position_errors_m(true[:, :2], est[:, :2])
    fig, (ax, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 5), gridspec_kw={"width_ratios": [1.2, 1, 1]})
    ax.plot(true[:, 0], true[:, 1], "-", color="k", lw=1.5, label="ground truth")
    ax.plot(est[:, 0], est[:, 1], "--", color="tab:orange", lw=1.2, label="estimate")
    ax.set_aspect("equal")
    ax.set_xlabel("x (m, map)")
    ax.set_ylabel("y (m, map)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax2.plot(t, err, color="tab:red", lw=1)
    ax2.set_xlabel("simulated time (s)")
    ax2.set_ylabel("position error (m)")
    ax2.set_title(f"ATE: RMS {np.sqrt(np.mean(err**2)):.3f} m, max {err.max():.3f} m")
    ax2.grid(alpha=0.3)
    for seg in segments_m:
        i, et, _ = relative_pose_errors(true, est, seg)
        if i.size:
            ax3.plot(t[i], et, lw=1, label=f"{seg:g} m segments")
    ax3.set_xlabel("segment start (s)")
    ax3.set_ylabel("RPE translation (m)")
    ax3.set_title("relative pose error")
    ax3.grid(alpha=0.3)
    if ax3.lines:
        ax3.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def evaluate_run(
    run_dir: str | Path,
    segments_m: tuple[float, ...] = DEFAULT_SEGMENTS_M,
    rover_id: str | None = None,
    plot_path: Path | None = None,
) -> dict[str, Any]:
    """ATE/RPE of every rover in ``run_dir`` (and the summary's own figures for comparison when present)."""
    run = Path(run_dir)
    if not run.is_dir():
        raise RunEvalError(f"{run}: not a run folder (no such directory)")
    for seg in segments_m:
        if not (seg > 0.0 and math.isfinite(seg)):
            raise RunEvalError(f"--segment: must be > 0, got {seg}")
    rovers = read_run_poses(run / "run.mcap", rover_id)
    result: dict[str, Any] = {"run_dir": str(run), "rovers": [evaluate_poses(p, segments_m) for p in rovers.values()]}
    summary_path = run / "summary.json"
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise RunEvalError(f"{summary_path}: not valid JSON ({exc})") from exc
        result["summary"] = {
            k: summary.get(k) for k in ("mission", "seed", "status", "localization_ate_m", "localization_max_error_m")
        }
    if plot_path is not None:
        first = next(iter(rovers.values()))
        name = result.get("summary", {}).get("mission") or run.name
        plot_eval(plot_path, first, segments_m, f"{name}: {first.rover_id}")
        result["plot"] = str(plot_path)
    return result


def format_summary(result: dict[str, Any]) -> str:
    lines = [f"run {result['run_dir']}"]
    for r in result["rovers"]:
        lines.append(
            f"  {r['rover_id']}: {r['samples']} samples, {r['duration_s']:.1f} s, {r['path_length_m']:.2f} m travelled"
        )
        lines.append(f"    ATE RMS {r['localization_ate_m']:.4f} m, max {r['localization_max_error_m']:.4f} m")
        for e in r["rpe"]:
            if e["pairs"] == 0:
                lines.append(f"    RPE {e['segment_m']:g} m: n/a (run shorter than one segment)")
            else:
                lines.append(
                    f"    RPE {e['segment_m']:g} m ({e['pairs']} pairs): translation RMS {e['trans_rms_m']:.4f} m "
                    f"({e['trans_rms_pct']:.2f}%), max {e['trans_max_m']:.4f} m; rotation RMS "
                    f"{e['rot_rms_deg']:.3f} deg, max {e['rot_max_deg']:.3f} deg"
                )
    s = result.get("summary")
    if s and s.get("localization_ate_m") is not None:
        lines.append(
            f"  summary.json: ATE {s['localization_ate_m']} m, max {s['localization_max_error_m']} m ({s['status']})"
        )
    if "plot" in result:
        lines.append(f"  plot: {result['plot']}")
    return "\n".join(lines)


def _cmd_eval_run(args: argparse.Namespace) -> int:
    run = Path(args.run_dir)
    plot = None if args.no_plot else Path(args.plot) if args.plot else run / "eval.png"
    segments = tuple(args.segment) if args.segment else DEFAULT_SEGMENTS_M
    try:
        result = evaluate_run(run, segments, args.rover, plot)
    except RunEvalError as exc:
        print(exc, file=sys.stderr)
        return EXIT_BAD_INPUT
    text = json.dumps(result, indent=2)
    if args.json == "-":
        print(text)
    else:
        print(format_summary(result))
        if args.json:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
    return EXIT_OK


def register_run(eval_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add ``run`` to the ``rover eval`` subcommands; returns its parser."""
    p = eval_subparsers.add_parser(
        "run",
        help="localization error (ATE, RPE) of a sim run folder against ground truth",
        description="Read RUN_DIR/run.mcap (true and estimated poses, as written by `rover sim run`), print ATE "
        "(RMS, max) and RPE (translation and rotation drift over 1 m and 5 m of travel) and write "
        "RUN_DIR/eval.png. Exit 0 on success, 2 on a missing or malformed run folder.",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="run folder written by `rover sim run --out`")
    p.add_argument(
        "--json",
        nargs="?",
        const="-",
        default=None,
        metavar="FILE",
        help="print the JSON instead of the summary (or, with FILE, also write it there)",
    )
    p.add_argument("--rover", default=None, help="evaluate only this rover id (default: every rover in the log)")
    p.add_argument(
        "--segment", type=float, action="append", default=None, metavar="M", help="RPE segment length (repeatable)"
    )
    p.add_argument("--plot", default=None, help="plot file (default: RUN_DIR/eval.png)")
    p.add_argument("--no-plot", action="store_true", help="do not write the plot")
    p.set_defaults(func=_cmd_eval_run)
    return p
