"""Arena walls from depth: straight vertical surfaces as lines in ``base_link``'s ground plane.

Lunabotics arenas are closed by walls (UCF 8.10 x 4.57 m, KSC 6.88 x 5.0 m), and nothing else on the floor
stands as high: boulders are at most 0.4 m across, the fiducial bar's top is at 0.42 m, a berm at 0.3 m. The
depth camera sees the walls from almost everywhere in the arena (the far wall across the obstacle zone, a side
wall from 1.5 m ahead when the rover drives 1 m from it), so they bound the odometry's drift where no fiducial
is in view (fiducials are allowed only in the start zone; walls are part of the arena, as lidar teams use them).

Pipeline, per depth frame (``WallDetector.detect``)::

    depth -> points in base_link (``DepthProjector``) -> keep z in [z_min_m, z_max_m] and the ground range
    in [min_range_m, max_range_m] -> up to ``max_lines`` times: the strongest line of the remaining points
    (OpenCV's ``HoughLinesPointSet``), its inliers (within ``inlier_m``), a total-least-squares fit on them
    (principal axis), kept when it has ``min_points`` and spans ``min_length_m``; its inliers removed.

Line parameters: n = (cos phi, sin phi) the unit normal pointing from the rover to the wall, r = n . p >= 0 the
distance of the line from base_link's origin. With the inliers' centroid c, their along-line coordinates t_i
(about c's foot, t_c = t . c, t = (-sin phi, cos phi)) and residuals e_i = n . (p_i - c), sigma^2 = mean(e_i^2)::

    var_phi = sigma^2 / sum((t_i - mean t)^2) + phi_floor^2
    var_r   = sigma^2 / n + t_c^2 (var_phi - phi_floor^2) + (range_floor + range_floor_per_m2 r^2)^2
    cov(r, phi) = t_c (var_phi - phi_floor^2)

(r moves with phi by dr/dphi = t . c about the centroid). The floors stand for what the fit cannot see: the
rover's pitch on uneven ground and the depth sensor's bias, common to every point of a frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from autonomy.estimation.tilt import check_tilt, level_rotation
from autonomy.msgs import DepthFrame, WallObservation
from autonomy.perception.hazards import DepthProjector

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class WallConfig:
    """Which depth points can be wall, and what a wall line needs (module docstring)."""

    z_min_m: float = 0.45  # above the tallest boulder, the fiducial bar (0.42 m) and a berm
    z_max_m: float = 1.0
    min_range_m: float = 0.8  # the rover's own bucket stays out
    # the whole arena (UCF 8.10 m long): from the dig site the far wall is the only sight of the distance along
    # the arena (7.3 m away; fitted within 0.2 cm on the sim's 160x120 depth); the range floor grows with it
    max_range_m: float = 8.5
    inlier_m: float = 0.04
    min_points: int = 25
    min_length_m: float = 0.8
    max_lines: int = 2
    stride: int = 1
    hough_rho_step_m: float = 0.02
    hough_theta_step_rad: float = math.radians(0.5)
    range_floor_m: float = 0.02
    range_floor_per_m2: float = 0.0005  # + this x r^2 (m): a depth sensor's bias grows with the square of range
    phi_floor_rad: float = math.radians(0.75)

    def __post_init__(self) -> None:
        if not 0.0 <= self.z_min_m < self.z_max_m:
            raise ValueError(f"WallConfig: need 0 <= z_min_m < z_max_m, got {self.z_min_m}, {self.z_max_m}")
        if not 0.0 <= self.min_range_m < self.max_range_m:
            raise ValueError(f"WallConfig: need 0 <= min_range_m < max_range_m, got {self.min_range_m}")
        for name in ("inlier_m", "min_length_m", "hough_rho_step_m", "hough_theta_step_rad"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0.0):
                raise ValueError(f"WallConfig.{name}: must be > 0, got {v}")
        for name in ("range_floor_m", "range_floor_per_m2", "phi_floor_rad"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"WallConfig.{name}: must be >= 0, got {v}")
        if self.min_points < 3 or self.max_lines < 1 or self.stride < 1:
            raise ValueError("WallConfig: need min_points >= 3, max_lines >= 1 and stride >= 1")


def fit_wall_line(points_xy: FloatArray, cfg: WallConfig, stamp_s: float) -> WallObservation | None:
    """Total-least-squares line through ``points_xy`` (n, 2) as a ``WallObservation`` (module docstring), or
    None when it has fewer than ``min_points`` or spans less than ``min_length_m``."""
    n = points_xy.shape[0]
    if n < cfg.min_points:
        return None
    c = points_xy.mean(axis=0)
    d = points_xy - c
    _, evecs = np.linalg.eigh(d.T @ d)  # ascending: the smallest is the normal's
    normal = evecs[:, 0]
    if float(normal @ c) < 0.0:
        normal = -normal
    tangent = np.array([-normal[1], normal[0]])
    t = d @ tangent
    length = float(t.max() - t.min())
    if length < cfg.min_length_m:
        return None
    e = d @ normal
    sigma2 = float(np.mean(e * e))
    st = float(np.sum((t - t.mean()) ** 2))
    var_phi_fit = sigma2 / max(st, 1e-12)
    t_c = float(tangent @ c)
    var_phi = var_phi_fit + cfg.phi_floor_rad**2
    r = float(normal @ c)
    var_r = sigma2 / n + t_c * t_c * var_phi_fit + (cfg.range_floor_m + cfg.range_floor_per_m2 * r * r) ** 2
    cov = t_c * var_phi_fit
    return WallObservation(
        stamp_s=stamp_s,
        range_m=r,
        normal_rad=math.atan2(float(normal[1]), float(normal[0])),
        covariance=((var_r, cov), (cov, var_phi)),
        length_m=length,
        points=n,
    )


class WallDetector:
    """Straight walls in depth frames (module docstring). Holds one ``DepthProjector`` per camera."""

    def __init__(self, config: WallConfig | None = None) -> None:
        self.config = config if config is not None else WallConfig()
        self._projector: DepthProjector | None = None

    def candidate_points(self, frame: DepthFrame, tilt_rad: tuple[float, float] | None = None) -> FloatArray:
        """The (n, 2) ground-plane positions of the frame's points that can be wall (height and range), with
        base_link rolled and pitched by ``tilt_rad`` (roll, pitch, rad; None: level) taken out first: pitched
        8 deg nose down, the floor 4 m ahead reads 0.56 m high in base_link, inside the wall band."""
        cfg = self.config
        if self._projector is None or self._projector.info != frame.info:
            self._projector = DepthProjector(frame.info, cfg.stride)
        pts = self._projector.points_in_base(frame.depth_m, frame.mount)
        if tilt_rad is not None:
            pts = pts @ level_rotation(*check_tilt(tilt_rad, "WallDetector")).T  # p_level = Ry(pitch) Rx(roll) p_base
        rng = np.hypot(pts[:, 0], pts[:, 1])
        keep = (pts[:, 2] >= cfg.z_min_m) & (pts[:, 2] <= cfg.z_max_m)
        keep &= (rng >= cfg.min_range_m) & (rng <= cfg.max_range_m)
        return np.ascontiguousarray(pts[keep, :2])

    def detect(self, frame: DepthFrame, tilt_rad: tuple[float, float] | None = None) -> tuple[WallObservation, ...]:
        """Up to ``max_lines`` wall lines in ``frame`` (base_link tilted by ``tilt_rad``: ``candidate_points``),
        the best supported first."""
        cfg = self.config
        pts = self.candidate_points(frame, tilt_rad)
        out: list[WallObservation] = []
        rho_max = cfg.max_range_m + cfg.hough_rho_step_m
        while len(out) < cfg.max_lines and pts.shape[0] >= cfg.min_points:
            lines = cv2.HoughLinesPointSet(
                pts.astype(np.float32).reshape(-1, 1, 2),
                1,
                cfg.min_points,
                -rho_max,
                rho_max,
                cfg.hough_rho_step_m,
                0.0,
                math.pi,
                cfg.hough_theta_step_rad,
            )
            if lines is None or len(lines) == 0:
                break
            _, rho, theta = (float(v) for v in lines.reshape(-1, 3)[0])
            dist = np.abs(pts[:, 0] * math.cos(theta) + pts[:, 1] * math.sin(theta) - rho)
            inliers = dist <= cfg.inlier_m
            obs = fit_wall_line(pts[inliers], cfg, frame.stamp_s)
            if obs is not None:
                # refit on the refined line's own inliers (the Hough cell is coarser than the points' spread)
                nrm = np.array([math.cos(obs.normal_rad), math.sin(obs.normal_rad)])
                inliers = np.abs(pts @ nrm - obs.range_m) <= cfg.inlier_m
                obs = fit_wall_line(pts[inliers], cfg, frame.stamp_s)
            if obs is None:
                break
            out.append(obs)
            pts = pts[~inliers]
        return tuple(out)
