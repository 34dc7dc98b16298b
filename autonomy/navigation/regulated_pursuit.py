"""Regulated pure pursuit along a planner ``Path``, with a precise final approach to a pose and reverse driving.

State: the pose p = (x, y, yaw) of ``base_link`` in ``map``; the path is a polyline with an optional goal
heading and a ``reverse`` flag (the rear leads: the effective heading is yaw + pi and v < 0).

One tick::

    progress   s* = arc length of the closest point of the path to p (searched forward from the last s*,
               so a path that doubles back is not skipped); e = cross-track distance
    look-ahead L = clip(lookahead_time_s |v_prev|, lookahead_min_m, lookahead_max_m); T = point at s* + L
               (the goal itself once within L of it)
    alpha      = wrap(atan2(T - p) - heading),  heading = yaw (+ pi when reversing)
    kappa      = 2 sin(alpha) / |T - p|
    speed      v* = max_speed x r_curv x r_prox x r_slope, each ratio in [min_ratio, 1]:
                 r_curv  = min(1, (1 / |kappa|) / regulated_min_radius_m)                (Nav2 RPP)
                 r_prox  = 1 - (1 - min_proximity_ratio) cost(p) / 252       (costmap's graded cost at p)
                 r_slope = 1 - (1 - min_slope_ratio) min(1, slope / max_slope_deg)
               then v* <= max(approach_min_speed, sqrt(2 approach_decel (d_goal - xy_tolerance / 2)))
    command    rotate in place (v = 0, w = clip(gain alpha)) when |alpha| > rotate_enter_rad, or when
               |kappa| > max_track_curvature_per_m and |alpha| > rotate_exit_rad (hysteresis: back to tracking
               when |alpha| < rotate_exit_rad); else v = sign v*, w = kappa |v| (sign = -1 reversing)
    final      within xy_tolerance_m of the goal position: align to the goal heading in place with
               |w| = clip(sqrt(2 max_yaw_accel |dyaw| ) , min_rotate_radps, max_yaw_rate) (no overshoot);
               done when |dyaw| < yaw_tolerance_rad (or no goal heading). Leaves ALIGN again only if the
               position error grows past 2 xy_tolerance_m.
    last cm    (``final_approach_m`` > 0) within final_approach_m of the goal (a leg's end too): the
               approach line runs through the goal along the path's last stretch (direction u); a = (p - g) . u
               (along: > 0 past the goal), l = (p - g) . u_perp. With |l| <= final_lateral_tolerance_m: turn in
               place square to u (the rear leading on a reverse path) while off by more than rotate_exit_rad,
               then straight along it, |v| = max(approach_min_speed, min(max_speed, sqrt(2 approach_decel
               |a|))) towards the goal, w = rotate_gain dyaw; ALIGN once |a| <= xy_tolerance_m, and ALIGN is
               left again only past final_approach_m / 2 from the goal (the turn to the goal heading about a
               pivot that is not base_link's moves it by cm: the turn is the last act). Off the line, the rover
               makes for the line's point 2 final_approach_m before the goal, and the ordinary pursuit takes
               over once it is out of the zone. Steering at a point a few cm away instead turns the rover by
               tens of degrees for each cm it is off, and near a wall it never settled (UCF build, eleventh
               session: 60-150 s turning back and forth at the dig stand, 4 cm from the goal; 5 s at a leg's
               end among the rocks, the loaded rover's rear swinging into one).

Rate limits |dv| <= max_accel dt and |dw| <= max_yaw_accel dt, with dt = stamp_s - previous stamp
(``control_period_s`` on the first call, capped at ``max_dt_s``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from autonomy.msgs import DriveCommand, Pose2D, PoseEstimate, wrap_angle_rad
from autonomy.navigation.costmap import MAX_GRADED_COST, Costmap
from autonomy.navigation.planner import Path
from autonomy.ticks import tick_dt_s


class FollowPhase(StrEnum):
    IDLE = "idle"  # no path
    TRACK = "track"
    ROTATE = "rotate"  # in place toward the look-ahead point
    ALIGN = "align"  # in place to the goal heading
    DONE = "done"


@dataclass(frozen=True, slots=True)
class RegulatedPursuitParams:
    max_speed_mps: float = 0.30
    max_yaw_rate_radps: float = 0.6
    max_accel_mps2: float = 0.5
    max_yaw_accel_radps2: float = 1.5
    lookahead_min_m: float = 0.3
    lookahead_max_m: float = 0.9
    lookahead_time_s: float = 2.0
    rotate_enter_rad: float = math.radians(50.0)
    rotate_exit_rad: float = math.radians(10.0)
    rotate_gain_per_s: float = 1.5
    regulated_min_radius_m: float = 0.9
    min_proximity_ratio: float = 0.35
    max_slope_deg: float = 25.0
    min_slope_ratio: float = 0.4
    approach_decel_mps2: float = 0.2
    approach_min_speed_mps: float = 0.03
    xy_tolerance_m: float = 0.03  # below the 5 cm target: margin for the last tick's motion
    yaw_tolerance_rad: float = math.radians(1.5)  # below the 3 deg target
    min_rotate_radps: float = 0.05
    # the last cm along the goal heading (module docstring, "last cm"; 0: off, the point is steered at to the end)
    final_approach_m: float = 0.0
    final_lateral_tolerance_m: float = 0.04
    # tighter arcs than this are turned in place instead (inf: never): a skid-steer slides sideways on tight
    # arcs, which its wheel odometry does not see (sim: 2 cm/m of drift at |kappa| < 0.1/m, 11 cm/m at 0.5-1/m,
    # 27 cm/m at 2-4/m; a turn in place 1-3 cm per 150 deg)
    max_track_curvature_per_m: float = math.inf
    control_period_s: float = 0.05
    max_dt_s: float = 0.2

    def __post_init__(self) -> None:
        for name in (
            "max_speed_mps",
            "max_yaw_rate_radps",
            "max_accel_mps2",
            "max_yaw_accel_radps2",
            "lookahead_min_m",
            "lookahead_max_m",
            "rotate_gain_per_s",
            "regulated_min_radius_m",
            "max_slope_deg",
            "approach_decel_mps2",
            "xy_tolerance_m",
            "yaw_tolerance_rad",
            "control_period_s",
            "max_dt_s",
            "final_lateral_tolerance_m",
        ):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0.0):
                raise ValueError(f"RegulatedPursuitParams.{name}: must be finite and > 0, got {v}")
        for name in ("min_proximity_ratio", "min_slope_ratio"):
            v = getattr(self, name)
            if not 0.0 < v <= 1.0:
                raise ValueError(f"RegulatedPursuitParams.{name}: must be in (0, 1], got {v}")
        if not (math.isfinite(self.final_approach_m) and self.final_approach_m >= 0.0):
            raise ValueError(
                f"RegulatedPursuitParams.final_approach_m: must be >= 0 (0: off), got {self.final_approach_m}"
            )
        if self.lookahead_max_m < self.lookahead_min_m:
            raise ValueError("RegulatedPursuitParams: lookahead_max_m < lookahead_min_m")
        if not (self.max_track_curvature_per_m > 0.0):
            raise ValueError(
                f"RegulatedPursuitParams.max_track_curvature_per_m: must be > 0 (inf: no limit), got "
                f"{self.max_track_curvature_per_m}"
            )
        if not 0.0 <= self.rotate_exit_rad <= self.rotate_enter_rad <= math.pi:
            raise ValueError("RegulatedPursuitParams: need 0 <= rotate_exit_rad <= rotate_enter_rad <= pi")
        if not 0.0 <= self.approach_min_speed_mps <= self.max_speed_mps:
            raise ValueError("RegulatedPursuitParams.approach_min_speed_mps: must be in [0, max_speed_mps]")


@dataclass(frozen=True, slots=True)
class FollowStatus:
    stamp_s: float
    phase: FollowPhase
    progress_m: float  # arc length of the closest path point
    distance_to_goal_m: float  # straight-line distance to the goal position
    cross_track_m: float
    yaw_error_rad: float  # to the goal heading (0 when the path has none)

    @property
    def done(self) -> bool:
        return self.phase == FollowPhase.DONE


def _clip(v: float, lo: float, hi: float) -> float:
    return lo if v < lo else hi if v > hi else v


def _approach_direction(pts: npt.NDArray[np.float64], goal_yaw_rad: float | None) -> tuple[float, float]:
    """Unit direction of travel into the goal: the path's last stretch at least 1 cm long (the goal heading, or
    x, when there is none)."""
    gx, gy = float(pts[-1, 0]), float(pts[-1, 1])
    for k in range(len(pts) - 2, -1, -1):
        dx, dy = gx - float(pts[k, 0]), gy - float(pts[k, 1])
        n = math.hypot(dx, dy)
        if n >= 0.01:
            return dx / n, dy / n
    yaw = 0.0 if goal_yaw_rad is None else goal_yaw_rad
    return math.cos(yaw), math.sin(yaw)


class RegulatedPurePursuit:
    """Follows planner ``Path``s (see the module docstring). ``step`` is the control tick."""

    def __init__(self, params: RegulatedPursuitParams | None = None) -> None:
        self.params = params or RegulatedPursuitParams()
        self._path: Path | None = None
        self._cum = np.zeros(1)
        self._seg = 0
        self._phase = FollowPhase.IDLE
        self._off_line = False  # the last cm: making for the line before the goal (``_final_approach``)
        self._approach_dir = (1.0, 0.0)  # unit direction of the path's last stretch (``_approach_direction``)
        self._last_stamp_s: float | None = None
        self._v = 0.0
        self._w = 0.0
        self.status = FollowStatus(0.0, FollowPhase.IDLE, 0.0, 0.0, 0.0, 0.0)

    def reset(self) -> None:
        """Forget the path and the progress (the speed state and rate limits are kept)."""
        self._path = None
        self._phase = FollowPhase.IDLE

    def step(
        self,
        estimate: PoseEstimate | Pose2D,
        path: Path | None,
        stamp_s: float,
        *,
        costmap: Costmap | None = None,
        slope_deg: float = 0.0,
    ) -> DriveCommand:
        """The drive command for this tick. A new ``path`` object restarts the progress along it."""
        prm = self.params
        pose = estimate.pose if isinstance(estimate, PoseEstimate) else estimate
        dt = tick_dt_s("RegulatedPurePursuit.step", self._last_stamp_s, stamp_s, prm.control_period_s, prm.max_dt_s)
        self._last_stamp_s = stamp_s
        if path is not self._path:
            self._set_path(path)
        if self._path is None:
            v_goal, w_goal, rotating = 0.0, 0.0, True
            self.status = FollowStatus(stamp_s, FollowPhase.IDLE, 0.0, 0.0, 0.0, 0.0)
        else:
            v_goal, w_goal, rotating = self._control(self._path, pose, stamp_s, costmap, slope_deg)
        v = _clip(v_goal, self._v - prm.max_accel_mps2 * dt, self._v + prm.max_accel_mps2 * dt)
        if not rotating and abs(v_goal) > 1e-9:
            w_goal *= v / v_goal  # stay on the arc while the speed is rate-limited
        w = _clip(w_goal, self._w - prm.max_yaw_accel_radps2 * dt, self._w + prm.max_yaw_accel_radps2 * dt)
        w = _clip(w, -prm.max_yaw_rate_radps, prm.max_yaw_rate_radps)
        self._v, self._w = v, w
        return DriveCommand(stamp_s, v, w)

    # -- internals -------------------------------------------------------------------------------------

    def _set_path(self, path: Path | None) -> None:
        self._path = path
        self._seg = 0
        self._off_line = False
        if path is None:
            self._phase = FollowPhase.IDLE
            return
        pts = path.points_xy_m
        self._cum = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])
        self._phase = FollowPhase.TRACK
        # the approach line's direction: the last stretch of the path at least 1 cm long (else the goal heading)
        self._approach_dir = _approach_direction(pts, path.goal_yaw_rad)

    def _project(self, path: Path, x: float, y: float) -> tuple[float, float, int]:
        """(s of the closest point, its distance, segment) over the segments from the current one on."""
        pts = path.points_xy_m
        a = pts[self._seg : -1]
        b = pts[self._seg + 1 :]
        d = b - a
        l2 = np.maximum((d * d).sum(axis=1), 1e-12)
        t = np.clip(((x - a[:, 0]) * d[:, 0] + (y - a[:, 1]) * d[:, 1]) / l2, 0.0, 1.0)
        cx = a[:, 0] + t * d[:, 0]
        cy = a[:, 1] + t * d[:, 1]
        dist = np.hypot(cx - x, cy - y)
        i = int(np.argmin(dist))
        seg = self._seg + i
        return float(self._cum[seg] + t[i] * math.sqrt(l2[i])), float(dist[i]), seg

    def _point_at(self, path: Path, s: float) -> tuple[float, float]:
        pts = path.points_xy_m
        s = _clip(s, 0.0, float(self._cum[-1]))
        i = int(np.clip(np.searchsorted(self._cum, s, side="right") - 1, 0, len(pts) - 2))
        seg = float(self._cum[i + 1] - self._cum[i])
        f = 0.0 if seg <= 0.0 else (s - float(self._cum[i])) / seg
        return float(pts[i, 0] + f * (pts[i + 1, 0] - pts[i, 0])), float(pts[i, 1] + f * (pts[i + 1, 1] - pts[i, 1]))

    def _turn_rate(self, err_rad: float) -> float:
        """A turn in place towards ``err_rad``: rotate_gain err, clipped to max_yaw_rate, at least min_rotate."""
        prm = self.params
        w = _clip(prm.rotate_gain_per_s * err_rad, -prm.max_yaw_rate_radps, prm.max_yaw_rate_radps)
        return w if abs(w) >= prm.min_rotate_radps else math.copysign(prm.min_rotate_radps, err_rad)

    def _final_approach(
        self,
        path: Path,
        pose: Pose2D,
        final: tuple[float, float],
        stamp_s: float,
        s: float,
        d_goal: float,
        cross: float,
        yaw_err: float,
    ) -> tuple[float, float, bool]:
        """The last cm (module docstring): (v, w, in place) within ``final_approach_m`` of the path's end.
        Off the approach line by more than ``final_lateral_tolerance_m``, the rover makes for the point 2
        ``final_approach_m`` before the goal on that line (forwards or backwards, whichever faces it; turning in
        place only past ``rotate_enter_rad``) until it is out of the zone, where the ordinary pursuit brings it
        back onto the line."""
        prm = self.params
        along, lateral = final
        # off the line: until out of the final zone (``_control`` resets it)
        self._off_line = self._off_line or abs(lateral) > prm.final_lateral_tolerance_m
        ux, uy = self._approach_dir
        u_yaw = math.atan2(uy, ux)
        if not self._off_line:  # square to the approach line (the rear leading on a reverse path), then along it
            heading_err = wrap_angle_rad(u_yaw + (math.pi if path.reverse else 0.0) - pose.yaw_rad)
            facing = math.cos(pose.yaw_rad - u_yaw)  # > 0: base_link's x points along the approach
            dist = abs(along)
            sign = -math.copysign(1.0, along) * math.copysign(1.0, facing)
            enter = prm.rotate_exit_rad
        else:  # back onto the line well before the goal: the ordinary pursuit takes over once out of the zone
            gx, gy = path.goal_xy
            px = gx - 2.0 * prm.final_approach_m * ux
            py = gy - 2.0 * prm.final_approach_m * uy
            dist = pose.distance_to_m(px, py)
            bearing = wrap_angle_rad(math.atan2(py - pose.y_m, px - pose.x_m) - pose.yaw_rad)
            sign = 1.0 if abs(bearing) <= math.pi / 2 else -1.0
            heading_err = bearing if sign > 0 else wrap_angle_rad(bearing - math.pi)
            enter = prm.rotate_enter_rad
        in_place = abs(heading_err) > enter
        self._phase = FollowPhase.ROTATE if in_place else FollowPhase.TRACK
        self.status = FollowStatus(stamp_s, self._phase, s, d_goal, cross, yaw_err)
        if in_place:  # square to the line first, then straight along it
            return 0.0, self._turn_rate(heading_err), True
        w = _clip(prm.rotate_gain_per_s * heading_err, -prm.max_yaw_rate_radps, prm.max_yaw_rate_radps)
        v = max(prm.approach_min_speed_mps, min(prm.max_speed_mps, math.sqrt(2.0 * prm.approach_decel_mps2 * dist)))
        return sign * v, w, True

    def _control(
        self, path: Path, pose: Pose2D, stamp_s: float, costmap: Costmap | None, slope_deg: float
    ) -> tuple[float, float, bool]:
        prm = self.params
        gx, gy = path.goal_xy
        s, cross, self._seg = self._project(path, pose.x_m, pose.y_m)
        d_goal = pose.distance_to_m(gx, gy)
        yaw_err = 0.0 if path.goal_yaw_rad is None else wrap_angle_rad(path.goal_yaw_rad - pose.yaw_rad)

        final = None  # (along, lateral) on the approach line within final_approach_m (module docstring)
        if d_goal <= prm.final_approach_m:
            ux, uy = self._approach_dir
            dx, dy = pose.x_m - gx, pose.y_m - gy
            final = (dx * ux + dy * uy, -dx * uy + dy * ux)
        if final is not None:
            along, lateral = abs(final[0]), abs(final[1])
            if self._phase in (FollowPhase.ALIGN, FollowPhase.DONE):
                # the turn to the goal heading is the last act: about a pivot that is not exactly the model's it
                # moves the rover by cm (8 cm for 110 deg with the pivot 5 cm off), and going back for them began
                # the loop again; only a jump of the estimate (a fix) past half the zone starts a new approach
                if d_goal > 0.5 * prm.final_approach_m:
                    self._phase = FollowPhase.TRACK
            elif along <= prm.xy_tolerance_m and lateral <= prm.final_lateral_tolerance_m:
                self._phase = FollowPhase.ALIGN
        elif self._phase in (FollowPhase.ALIGN, FollowPhase.DONE) and d_goal > 2.0 * prm.xy_tolerance_m:
            self._phase = FollowPhase.TRACK
        elif self._phase in (FollowPhase.TRACK, FollowPhase.ROTATE) and d_goal <= prm.xy_tolerance_m:
            self._phase = FollowPhase.ALIGN
        if self._phase in (FollowPhase.ALIGN, FollowPhase.DONE):
            if abs(yaw_err) < prm.yaw_tolerance_rad:
                self._phase = FollowPhase.DONE
            elif self._phase == FollowPhase.DONE and abs(yaw_err) > 2.0 * prm.yaw_tolerance_rad:
                self._phase = FollowPhase.ALIGN
            self.status = FollowStatus(stamp_s, self._phase, s, d_goal, cross, yaw_err)
            if self._phase == FollowPhase.DONE:
                return 0.0, 0.0, True
            mag = min(math.sqrt(2.0 * prm.max_yaw_accel_radps2 * abs(yaw_err)), prm.max_yaw_rate_radps)
            mag = min(max(mag, prm.min_rotate_radps), prm.rotate_gain_per_s * abs(yaw_err) + prm.min_rotate_radps)
            return 0.0, math.copysign(mag, yaw_err), True

        if final is not None:
            return self._final_approach(path, pose, final, stamp_s, s, d_goal, cross, yaw_err)
        self._off_line = False

        sign = -1.0 if path.reverse else 1.0
        heading = pose.yaw_rad + (math.pi if path.reverse else 0.0)
        look = _clip(prm.lookahead_time_s * abs(self._v), prm.lookahead_min_m, prm.lookahead_max_m)
        total = float(self._cum[-1])
        tx, ty = (gx, gy) if d_goal <= look or s + look >= total else self._point_at(path, s + look)
        dist_t = math.hypot(tx - pose.x_m, ty - pose.y_m)
        alpha = wrap_angle_rad(math.atan2(ty - pose.y_m, tx - pose.x_m) - heading) if dist_t > 1e-9 else 0.0
        kappa = 2.0 * math.sin(alpha) / max(dist_t, 1e-9)
        if self._phase == FollowPhase.ROTATE and abs(alpha) < prm.rotate_exit_rad:
            self._phase = FollowPhase.TRACK
        elif self._phase == FollowPhase.TRACK and (
            abs(alpha) > prm.rotate_enter_rad
            or (abs(kappa) > prm.max_track_curvature_per_m and abs(alpha) > prm.rotate_exit_rad)
        ):
            self._phase = FollowPhase.ROTATE
        self.status = FollowStatus(stamp_s, self._phase, s, d_goal, cross, yaw_err)
        if self._phase == FollowPhase.ROTATE:
            return 0.0, self._turn_rate(alpha), True

        r_curv = 1.0 if abs(kappa) < 1e-9 else min(1.0, (1.0 / abs(kappa)) / prm.regulated_min_radius_m)
        r_prox = 1.0
        if costmap is not None:
            c = min(costmap.cost_at(pose.x_m, pose.y_m), MAX_GRADED_COST)
            r_prox = 1.0 - (1.0 - prm.min_proximity_ratio) * c / MAX_GRADED_COST
        r_slope = 1.0 - (1.0 - prm.min_slope_ratio) * min(1.0, abs(slope_deg) / prm.max_slope_deg)
        v = prm.max_speed_mps * max(r_curv, 0.2) * r_prox * r_slope
        v = min(v, prm.max_yaw_rate_radps / abs(kappa)) if abs(kappa) > 1e-9 else v
        ramp = math.sqrt(2.0 * prm.approach_decel_mps2 * max(0.0, d_goal - 0.5 * prm.xy_tolerance_m))
        v = min(v, max(prm.approach_min_speed_mps, ramp))
        return sign * v, kappa * v, False
