"""Pure-pursuit waypoint follower for a skid-steer (unicycle) base, with rotate-in-place and rate limits.

Geometry of one tick (pose p = (x, y, yaw) of ``base_link`` in ``map``)::

    segment     A -> B: from the previous waypoint (or where the rover stood when the waypoints were set)
                to the current waypoint B
    look-ahead  L = clip(lookahead_time_s * |v_prev|, lookahead_min_m, lookahead_max_m)   (adaptive)
    closest     C = A + t (B - A),  t = clip((p - A).(B - A) / |B - A|^2, 0, 1);  e = |p - C|
    target      T = the point sqrt(L^2 - e^2) beyond C along the segment (C itself when e >= L),
                clamped to B;  T = B when |p - B| <= L
    alpha       = wrap(atan2(T_y - y, T_x - x) - yaw)          heading error to the target
    kappa       = 2 sin(alpha) / |T - p|                       the arc through p tangent to the heading and T

Modes:

- rotate in place when |alpha| > rotate_enter_rad (left again below rotate_exit_rad, hysteresis):
  v* = 0, w* = clip(rotate_gain_per_s * alpha, +-max_yaw_rate_radps);
- track otherwise: v* = min(max_speed, sqrt(max_lateral_accel / |kappa|), max_yaw_rate / |kappa|,
  approach limit), then w* = kappa * v (v after rate limiting, so the rover stays on the arc).

Approach limit: before the final waypoint, and before any waypoint where the path turns sharper than
``rotate_enter_rad``, a constant-deceleration profile aimed half a tolerance short of the waypoint:
v* <= max(min_speed_mps, sqrt(2 approach_decel_mps2 max(0, d - tolerance / 2))), d = distance to it.

Rate limits: |v - v_prev| <= max_accel_mps2 dt and |w - w_prev| <= max_yaw_accel_radps2 dt, with
dt = stamp_s - previous stamp_s (``control_period_s`` on the first call, capped at ``max_dt_s``). A
waypoint counts as reached when the rover is within its ``tolerance_m``; after the final one the follower
ramps to a stop (within the same rate limits) and ``NavigationStatus.done`` is True.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from autonomy.msgs import DriveCommand, NavigationStatus, Pose2D, Waypoint, wrap_angle_rad
from autonomy.ticks import tick_dt_s


@dataclass(frozen=True, slots=True)
class PurePursuitParams:
    max_speed_mps: float = 0.35
    max_yaw_rate_radps: float = 0.6
    max_accel_mps2: float = 0.5  # |dv/dt| limit, speeding up and slowing down
    max_yaw_accel_radps2: float = 1.5  # |dw/dt| limit
    lookahead_min_m: float = 0.35
    lookahead_max_m: float = 1.0
    lookahead_time_s: float = 2.5  # look-ahead = this x current speed, clipped to [min, max]
    rotate_enter_rad: float = math.radians(60.0)
    rotate_exit_rad: float = math.radians(15.0)
    rotate_gain_per_s: float = 1.5  # yaw rate per rad of heading error while rotating in place
    max_lateral_accel_mps2: float = 0.3  # curvature speed limit v <= sqrt(a_lat / |kappa|)
    approach_decel_mps2: float = 0.25  # braking profile before a stop (below max_accel_mps2: margin)
    min_speed_mps: float = 0.05  # creep speed at the end of the approach ramp
    control_period_s: float = 0.05  # dt assumed for the first update
    max_dt_s: float = 0.2  # longer gaps are rate-limited as if this long

    def __post_init__(self) -> None:
        positive = (
            "max_speed_mps",
            "max_yaw_rate_radps",
            "max_accel_mps2",
            "max_yaw_accel_radps2",
            "lookahead_min_m",
            "lookahead_max_m",
            "rotate_gain_per_s",
            "max_lateral_accel_mps2",
            "approach_decel_mps2",
            "control_period_s",
            "max_dt_s",
        )
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"PurePursuitParams.{name}: must be finite and > 0, got {value}")
        if not (math.isfinite(self.lookahead_time_s) and self.lookahead_time_s >= 0.0):
            raise ValueError(f"PurePursuitParams.lookahead_time_s: must be >= 0, got {self.lookahead_time_s}")
        if self.lookahead_max_m < self.lookahead_min_m:
            raise ValueError(
                f"PurePursuitParams: lookahead_max_m {self.lookahead_max_m} < lookahead_min_m {self.lookahead_min_m}"
            )
        if not 0.0 <= self.rotate_exit_rad <= self.rotate_enter_rad <= math.pi:
            raise ValueError(
                "PurePursuitParams: need 0 <= rotate_exit_rad <= rotate_enter_rad <= pi, got "
                f"{self.rotate_exit_rad}, {self.rotate_enter_rad}"
            )
        if not 0.0 <= self.min_speed_mps <= self.max_speed_mps:
            raise ValueError(
                f"PurePursuitParams.min_speed_mps: must be in [0, max_speed_mps], got {self.min_speed_mps}"
            )


def _clip(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


class PurePursuit:
    """Follows a sequence of waypoints (e.g. a loop that returns to its start) and stops at the last."""

    def __init__(self, params: PurePursuitParams, waypoints: Sequence[Waypoint] = ()) -> None:
        self.params = params
        self._waypoints: tuple[Waypoint, ...] = ()
        self._index = 0
        self._reached: list[int] = []
        self._segment_start: tuple[float, float] | None = None
        self._rotating = False
        self._last_stamp_s: float | None = None
        self._v = 0.0
        self._w = 0.0
        self.set_waypoints(waypoints)

    # -- configuration -------------------------------------------------------------------------------

    def set_waypoints(self, waypoints: Sequence[Waypoint], start: Pose2D | None = None) -> None:
        """Follow ``waypoints`` from the first. The first segment starts at ``start`` (or, when None, where
        the rover is at the next ``update``). The current speed is kept, so the rate limits still hold."""
        for i, wp in enumerate(waypoints):
            if not (math.isfinite(wp.x_m) and math.isfinite(wp.y_m)):
                raise ValueError(f"PurePursuit.set_waypoints: waypoint {i} is not finite: {wp}")
            if not (math.isfinite(wp.tolerance_m) and wp.tolerance_m > 0.0):
                raise ValueError(f"PurePursuit.set_waypoints: waypoint {i} tolerance must be > 0, got {wp}")
        self._waypoints = tuple(waypoints)
        self._index = 0
        self._reached = []
        self._segment_start = None if start is None else (start.x_m, start.y_m)
        self._rotating = False

    @property
    def waypoints(self) -> tuple[Waypoint, ...]:
        return self._waypoints

    @property
    def rotating_in_place(self) -> bool:
        return self._rotating

    # -- the tick ------------------------------------------------------------------------------------

    def update(self, stamp_s: float, pose: Pose2D) -> tuple[DriveCommand, NavigationStatus]:
        """One control tick: the drive command for ``pose`` at ``stamp_s`` and the navigation status."""
        prm = self.params
        dt = tick_dt_s("PurePursuit.update", self._last_stamp_s, stamp_s, prm.control_period_s, prm.max_dt_s)
        self._last_stamp_s = stamp_s
        if self._segment_start is None:
            self._segment_start = (pose.x_m, pose.y_m)

        wps = self._waypoints
        while self._index < len(wps):
            wp = wps[self._index]
            if pose.distance_to_m(wp.x_m, wp.y_m) > wp.tolerance_m:
                break
            self._reached.append(self._index)
            self._segment_start = (wp.x_m, wp.y_m)
            self._index += 1
            self._rotating = False

        if self._index >= len(wps):
            v_goal, w_goal = 0.0, 0.0
            self._rotating = False
        else:
            v_goal, w_goal = self._track(pose)

        # Rate limits. In tracking mode the yaw rate follows the rate-limited speed (stay on the arc).
        v = _clip(v_goal, self._v - prm.max_accel_mps2 * dt, self._v + prm.max_accel_mps2 * dt)
        v = _clip(v, -prm.max_speed_mps, prm.max_speed_mps)
        if self._index < len(wps) and not self._rotating and abs(v_goal) > 1e-9:
            w_goal = w_goal * (v / v_goal)
        w = _clip(w_goal, self._w - prm.max_yaw_accel_radps2 * dt, self._w + prm.max_yaw_accel_radps2 * dt)
        w = _clip(w, -prm.max_yaw_rate_radps, prm.max_yaw_rate_radps)
        self._v, self._w = v, w
        return DriveCommand(stamp_s, v, w), self._status(stamp_s, pose)

    # -- internals -----------------------------------------------------------------------------------

    def _lookahead_target(self, pose: Pose2D) -> tuple[float, float]:
        prm = self.params
        wp = self._waypoints[self._index]
        ax, ay = self._segment_start if self._segment_start is not None else (pose.x_m, pose.y_m)
        bx, by = wp.x_m, wp.y_m
        lookahead = _clip(prm.lookahead_time_s * abs(self._v), prm.lookahead_min_m, prm.lookahead_max_m)
        if pose.distance_to_m(bx, by) <= lookahead:
            return bx, by
        sx, sy = bx - ax, by - ay
        seg_len = math.hypot(sx, sy)
        if seg_len < 1e-9:
            return bx, by
        ux, uy = sx / seg_len, sy / seg_len
        along = _clip((pose.x_m - ax) * ux + (pose.y_m - ay) * uy, 0.0, seg_len)
        cx, cy = ax + along * ux, ay + along * uy
        cross = math.hypot(pose.x_m - cx, pose.y_m - cy)
        ahead = math.sqrt(lookahead * lookahead - cross * cross) if cross < lookahead else 0.0
        s = min(seg_len, along + ahead)
        return ax + s * ux, ay + s * uy

    def _stop_ahead(self) -> bool:
        """True when the rover must (nearly) stop at the current waypoint: the last, or a sharp turn."""
        i = self._index
        wps = self._waypoints
        if i >= len(wps) - 1:
            return True
        a = self._segment_start
        if a is None:
            return False
        b, c = wps[i], wps[i + 1]
        h_in = math.atan2(b.y_m - a[1], b.x_m - a[0])
        h_out = math.atan2(c.y_m - b.y_m, c.x_m - b.x_m)
        return abs(wrap_angle_rad(h_out - h_in)) > self.params.rotate_enter_rad

    def _track(self, pose: Pose2D) -> tuple[float, float]:
        prm = self.params
        tx, ty = self._lookahead_target(pose)
        dist_target = math.hypot(tx - pose.x_m, ty - pose.y_m)
        if dist_target < 1e-6:
            return 0.0, 0.0
        alpha = wrap_angle_rad(math.atan2(ty - pose.y_m, tx - pose.x_m) - pose.yaw_rad)

        if self._rotating and abs(alpha) < prm.rotate_exit_rad:
            self._rotating = False
        elif not self._rotating and abs(alpha) > prm.rotate_enter_rad:
            self._rotating = True
        if self._rotating:
            w = _clip(prm.rotate_gain_per_s * alpha, -prm.max_yaw_rate_radps, prm.max_yaw_rate_radps)
            return 0.0, w

        kappa = 2.0 * math.sin(alpha) / dist_target
        v = prm.max_speed_mps
        if abs(kappa) > 1e-9:
            v = min(v, math.sqrt(prm.max_lateral_accel_mps2 / abs(kappa)), prm.max_yaw_rate_radps / abs(kappa))
        if self._stop_ahead():
            wp = self._waypoints[self._index]
            d = pose.distance_to_m(wp.x_m, wp.y_m)
            ramp = math.sqrt(2.0 * prm.approach_decel_mps2 * max(0.0, d - 0.5 * wp.tolerance_m))
            v = min(v, max(prm.min_speed_mps, ramp))
        return v, kappa * v

    def _status(self, stamp_s: float, pose: Pose2D) -> NavigationStatus:
        wps = self._waypoints
        if not wps:
            remaining = 0.0
        elif self._index >= len(wps):
            remaining = pose.distance_to_m(wps[-1].x_m, wps[-1].y_m)
        else:
            wp = wps[self._index]
            remaining = pose.distance_to_m(wp.x_m, wp.y_m)
            for a, b in zip(wps[self._index : -1], wps[self._index + 1 :], strict=True):
                remaining += math.hypot(b.x_m - a.x_m, b.y_m - a.y_m)
        return NavigationStatus(stamp_s, self._index, len(wps), remaining, tuple(self._reached))
