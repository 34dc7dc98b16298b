"""A run folder: ``summary.json``, ``paths.png``, ``report.html`` and ``run.mcap`` (opens in Foxglove).

The trace is recorded by the shell around the loop (it knows the simulator's ground truth); nothing
here feeds back into control.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autonomy.msgs import CameraFrame, FiducialObservation, Landmark, Waypoint

POSE_IN_FRAME_SCHEMA = {
    "title": "foxglove.PoseInFrame",
    "type": "object",
    "properties": {
        "timestamp": {
            "type": "object",
            "properties": {"sec": {"type": "integer"}, "nsec": {"type": "integer"}},
        },
        "frame_id": {"type": "string"},
        "pose": {
            "type": "object",
            "properties": {
                "position": {
                    "type": "object",
                    "properties": {"x": {"type": "number"}, "y": {"type": "number"}, "z": {"type": "number"}},
                },
                "orientation": {
                    "type": "object",
                    "properties": {
                        "x": {"type": "number"},
                        "y": {"type": "number"},
                        "z": {"type": "number"},
                        "w": {"type": "number"},
                    },
                },
            },
        },
    },
}
STATUS_SCHEMA = {
    "title": "regolith.TickStatus",
    "type": "object",
    "properties": {
        "position_sigma_m": {"type": "number"},
        "tags_seen": {"type": "integer"},
        "tags_accepted": {"type": "integer"},
        "linear_x_mps": {"type": "number"},
        "angular_z_radps": {"type": "number"},
        "waypoint_index": {"type": "integer"},
        "stop_reason": {"type": "string"},
    },
}


@dataclass(slots=True)
class RunTrace:
    """Per-tick samples of one rover (appended by the shell's observer)."""

    rover_id: str
    t_s: list[float] = field(default_factory=list)
    true_pose: list[tuple[float, float, float]] = field(default_factory=list)
    est_pose: list[tuple[float, float, float]] = field(default_factory=list)
    sigma_m: list[float] = field(default_factory=list)
    nees_xy: list[float] = field(default_factory=list)  # position NEES (2 dof) of the estimate vs the truth
    tags_seen: list[int] = field(default_factory=list)
    tags_accepted: list[int] = field(default_factory=list)
    cmd: list[tuple[float, float]] = field(default_factory=list)
    waypoint_index: list[int] = field(default_factory=list)
    stop_reason: list[str] = field(default_factory=list)
    # optional streams (construction runs): tool command per tick (rad), planned paths (t, [(x, y)...]), map
    # snapshots (t, MapSnapshot), fiducial detections (t, [(tag id, x, y) in base_link...])
    tool_rad: list[float] = field(default_factory=list)
    paths: list[tuple[float, tuple[tuple[float, float], ...]]] = field(default_factory=list)
    maps: list[tuple[float, MapSnapshot]] = field(default_factory=list)
    detections: list[tuple[float, tuple[tuple[int, float, float], ...]]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MapSnapshot:
    """A costmap (uint8, rows y, columns x) in ``map``: origin of cell (0, 0)'s corner and cell size (m)."""

    origin_xy_m: tuple[float, float]
    cell_m: float
    cost: np.ndarray


def _stamp(t_s: float) -> dict[str, int]:
    ns = round(t_s * 1e9)
    return {"sec": ns // 1_000_000_000, "nsec": ns % 1_000_000_000}


def _pose_msg(t_s: float, x: float, y: float, yaw: float) -> bytes:
    msg = {
        "timestamp": _stamp(t_s),
        "frame_id": "map",
        "pose": {
            "position": {"x": x, "y": y, "z": 0.0},
            "orientation": {"x": 0.0, "y": 0.0, "z": math.sin(yaw / 2), "w": math.cos(yaw / 2)},
        },
    }
    return json.dumps(msg).encode()


GRID_SCHEMA = {
    "title": "foxglove.Grid",
    "type": "object",
    "properties": {
        "timestamp": POSE_IN_FRAME_SCHEMA["properties"]["timestamp"],  # type: ignore[index]
        "frame_id": {"type": "string"},
        "pose": POSE_IN_FRAME_SCHEMA["properties"]["pose"],  # type: ignore[index]
        "column_count": {"type": "integer"},
        "cell_size": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}},
        "row_stride": {"type": "integer"},
        "cell_stride": {"type": "integer"},
        "fields": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "offset": {"type": "integer"}, "type": {"type": "integer"}},
            },
        },
        "data": {"type": "string", "contentEncoding": "base64"},
    },
}
POSES_IN_FRAME_SCHEMA = {
    "title": "foxglove.PosesInFrame",
    "type": "object",
    "properties": {
        "timestamp": POSE_IN_FRAME_SCHEMA["properties"]["timestamp"],  # type: ignore[index]
        "frame_id": {"type": "string"},
        "poses": {"type": "array", "items": POSE_IN_FRAME_SCHEMA["properties"]["pose"]},  # type: ignore[index]
    },
}
COMMAND_SCHEMA = {
    "title": "regolith.Commands",
    "type": "object",
    "properties": {
        "linear_x_mps": {"type": "number"},
        "angular_z_radps": {"type": "number"},
        "tool_rad": {"type": "number"},
    },
}
DETECTIONS_SCHEMA = {
    "title": "regolith.FiducialDetections",
    "type": "object",
    "properties": {
        "frame_id": {"type": "string"},
        "tags": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"id": {"type": "integer"}, "x": {"type": "number"}, "y": {"type": "number"}},
            },
        },
    },
}
_UINT8 = 1  # foxglove.NumericType UINT8


def _pose_dict(x: float, y: float, yaw: float) -> dict[str, Any]:
    return {
        "position": {"x": x, "y": y, "z": 0.0},
        "orientation": {"x": 0.0, "y": 0.0, "z": math.sin(yaw / 2), "w": math.cos(yaw / 2)},
    }


def _grid_msg(t_s: float, snap: MapSnapshot) -> bytes:
    cost = np.ascontiguousarray(snap.cost, dtype=np.uint8)
    cols = cost.shape[1]
    msg = {
        "timestamp": _stamp(t_s),
        "frame_id": "map",
        "pose": _pose_dict(snap.origin_xy_m[0], snap.origin_xy_m[1], 0.0),
        "column_count": cols,
        "cell_size": {"x": snap.cell_m, "y": snap.cell_m},
        "row_stride": cols,
        "cell_stride": 1,
        "fields": [{"name": "cost", "offset": 0, "type": _UINT8}],
        "data": base64.b64encode(cost.tobytes()).decode("ascii"),
    }
    return json.dumps(msg).encode()


def write_mcap(path: Path, trace: RunTrace) -> None:
    """Poses (true and estimated, foxglove.PoseInFrame) and per-tick status as JSON channels; when the trace
    has them: drive and tool commands (``/ROVER/cmd``), the costmap (foxglove.Grid, ``/ROVER/map``), planned
    paths (foxglove.PosesInFrame, ``/ROVER/path``) and fiducial detections (``/ROVER/detections``)."""
    from mcap.writer import Writer

    with path.open("wb") as f:
        w = Writer(f)
        w.start(profile="", library="regolith")
        pose_schema = w.register_schema(
            name="foxglove.PoseInFrame", encoding="jsonschema", data=json.dumps(POSE_IN_FRAME_SCHEMA).encode()
        )
        status_schema = w.register_schema(
            name="regolith.TickStatus", encoding="jsonschema", data=json.dumps(STATUS_SCHEMA).encode()
        )
        rid = trace.rover_id
        ch_true = w.register_channel(f"/{rid}/pose/ground_truth", "json", pose_schema)
        ch_est = w.register_channel(f"/{rid}/pose/estimate", "json", pose_schema)
        ch_status = w.register_channel(f"/{rid}/status", "json", status_schema)
        for i, t in enumerate(trace.t_s):
            ns = round(t * 1e9)
            w.add_message(ch_true, log_time=ns, publish_time=ns, data=_pose_msg(t, *trace.true_pose[i]))
            w.add_message(ch_est, log_time=ns, publish_time=ns, data=_pose_msg(t, *trace.est_pose[i]))
            status = {
                "position_sigma_m": trace.sigma_m[i],
                "tags_seen": trace.tags_seen[i],
                "tags_accepted": trace.tags_accepted[i],
                "linear_x_mps": trace.cmd[i][0],
                "angular_z_radps": trace.cmd[i][1],
                "waypoint_index": trace.waypoint_index[i],
                "stop_reason": trace.stop_reason[i],
            }
            w.add_message(ch_status, log_time=ns, publish_time=ns, data=json.dumps(status).encode())
        if trace.tool_rad:
            sch = w.register_schema(
                name="regolith.Commands", encoding="jsonschema", data=json.dumps(COMMAND_SCHEMA).encode()
            )
            ch = w.register_channel(f"/{rid}/cmd", "json", sch)
            for t, (v, om), tool in zip(trace.t_s, trace.cmd, trace.tool_rad, strict=False):
                ns = round(t * 1e9)
                msg: dict[str, Any] = {"linear_x_mps": v, "angular_z_radps": om, "tool_rad": tool}
                w.add_message(ch, log_time=ns, publish_time=ns, data=json.dumps(msg).encode())
        if trace.maps:
            sch = w.register_schema(name="foxglove.Grid", encoding="jsonschema", data=json.dumps(GRID_SCHEMA).encode())
            ch = w.register_channel(f"/{rid}/map", "json", sch)
            for t, snap in trace.maps:
                ns = round(t * 1e9)
                w.add_message(ch, log_time=ns, publish_time=ns, data=_grid_msg(t, snap))
        if trace.paths:
            sch = w.register_schema(
                name="foxglove.PosesInFrame", encoding="jsonschema", data=json.dumps(POSES_IN_FRAME_SCHEMA).encode()
            )
            ch = w.register_channel(f"/{rid}/path", "json", sch)
            for t, pts in trace.paths:
                ns = round(t * 1e9)
                msg = {
                    "timestamp": _stamp(t),
                    "frame_id": "map",
                    "poses": [_pose_dict(x, y, 0.0) for x, y in pts],
                }
                w.add_message(ch, log_time=ns, publish_time=ns, data=json.dumps(msg).encode())
        if trace.detections:
            sch = w.register_schema(
                name="regolith.FiducialDetections", encoding="jsonschema", data=json.dumps(DETECTIONS_SCHEMA).encode()
            )
            ch = w.register_channel(f"/{rid}/detections", "json", sch)
            for t, tags in trace.detections:
                ns = round(t * 1e9)
                msg = {"frame_id": "base_link", "tags": [{"id": i, "x": x, "y": y} for i, x, y in tags]}
                w.add_message(ch, log_time=ns, publish_time=ns, data=json.dumps(msg).encode())
        w.finish()  # type: ignore[no-untyped-call]


def plot_paths(
    path: Path,
    trace: RunTrace,
    waypoints: tuple[Waypoint, ...],
    beacons: tuple[Landmark, ...],
    obstacles_xy_r: list[tuple[float, float, float]],
    title: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    true = np.asarray(trace.true_pose)
    est = np.asarray(trace.est_pose)
    t = np.asarray(trace.t_s)
    err = np.hypot(*(est[:, :2] - true[:, :2]).T) if len(true) else np.zeros(0)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [1.3, 1]})
    for ox, oy, r in obstacles_xy_r:
        ax.add_patch(Circle((ox, oy), r, color="0.55", alpha=0.6))
    if len(true):
        ax.plot(true[:, 0], true[:, 1], "-", color="k", lw=1.5, label="ground truth")
        ax.plot(est[:, 0], est[:, 1], "--", color="tab:orange", lw=1.2, label="estimate (EKF)")
    ax.plot(
        [w.x_m for w in waypoints],
        [w.y_m for w in waypoints],
        "o",
        mfc="none",
        color="tab:blue",
        ms=10,
        label="waypoints",
    )
    for w in waypoints:
        ax.add_patch(Circle((w.x_m, w.y_m), w.tolerance_m, fill=False, color="tab:blue", lw=0.8))
    ax.plot([b.x_m for b in beacons], [b.y_m for b in beacons], "s", color="tab:green", label="AprilTag beacons")
    for b in beacons:
        ax.annotate(str(b.tag_id), (b.x_m, b.y_m), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m, map)")
    ax.set_ylabel("y (m, map)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax2.plot(t, err, color="tab:red", lw=1, label="position error (m)")
    ax2.plot(t, trace.sigma_m, color="tab:purple", lw=1, label="EKF 1-sigma (m)")
    ax2.set_xlabel("simulated time (s)")
    ax2.set_ylabel("m")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    ax2.set_title("localization error")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_camera_snapshot(path: Path, frame: CameraFrame, observations: tuple[FiducialObservation, ...]) -> None:
    """The camera frame with each detected tag outlined and labelled (id, range)."""
    import cv2

    img = frame.image_bgr.copy()
    for obs in observations:
        quad = np.round(np.asarray(obs.corners_px, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [quad], isClosed=True, color=(0, 220, 0), thickness=2)
        x, y = quad[:, 0, 0].min(), quad[:, 0, 1].min()
        label = f"id {obs.tag_id} {obs.range_m():.2f} m"
        cv2.putText(img, label, (int(x), max(12, int(y) - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 220, 0), 1)
    caption = f"t={frame.stamp_s:.1f} s  {frame.camera_id}  {len(observations)} tags"
    cv2.putText(img, caption, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1)
    if not cv2.imwrite(str(path), img):
        raise OSError(f"{path}: could not write the camera snapshot")


_CAPTIONS = {
    "paths.png": "True and estimated paths, waypoints, beacons and rocks; localization error over time",
    "scene.png": "The site at the end of the run (overview render, the site's sun, cast shadows)",
    "elevation_before_after.png": "Elevation before and after the run, and the difference (what was dug and built)",
    "camera.png": "The camera frame that saw the most tags, detections outlined",
}


def write_report_html(path: Path, summary: dict[str, Any], images: list[Path]) -> None:
    rows = "\n".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v) if not isinstance(v, str) else v)}</td></tr>"
        for k, v in summary.items()
        if k != "profile"
    )
    prof = summary.get("profile", {})
    prof_rows = "\n".join(
        f"<tr><td>{html.escape(k)}</td><td>{v['p50_ms']:.3f}</td><td>{v['p99_ms']:.3f}</td><td>{int(v['count'])}</td></tr>"
        for k, v in prof.items()
    )
    imgs = "\n".join(
        f'<figure><img src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}" '
        f'alt="{html.escape(p.stem)}" style="max-width:100%"><figcaption>{html.escape(_CAPTIONS.get(p.name, p.name))}'
        "</figcaption></figure>"
        for p in images
    )
    title = html.escape(summary["mission"])
    path.write_text(
        f"""<!doctype html><html><head><meta charset="utf-8"><title>Regolith run: {title}</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}</style></head><body>
<h1>Regolith run: {html.escape(summary["mission"])} (seed {summary["seed"]}): {html.escape(summary["status"])}</h1>
{imgs}
<h2>Summary</h2><table>{rows}</table>
<h2>Loop profile (wall time per stage)</h2><table><tr><th>stage</th><th>p50 ms</th><th>p99 ms</th><th>calls</th></tr>
{prof_rows}</table>
<p>The log <code>run.mcap</code> opens in Foxglove (poses in <code>map</code>, per-tick status).</p>
</body></html>
""",
        encoding="utf-8",
    )
