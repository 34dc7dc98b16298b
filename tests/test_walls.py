"""Arena walls from depth (``autonomy.perception.walls``) and the EKF's wall update (model (c))."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from autonomy.estimation.landmark_ekf import LandmarkEkf, LandmarkEkfParams, UpdateResult
from autonomy.mapping.elevation_map import compose
from autonomy.mission.site_zones import PRESET_ZONES
from autonomy.msgs import CameraInfo, DepthFrame, Pose2D, Pose3D, WallLine, WallObservation
from autonomy.perception.walls import WallConfig, WallDetector, fit_wall_line

UCF_WALLS = PRESET_ZONES["ucf"].arena_walls()


def _mount() -> Pose3D:
    """The sim rover's camera: 0.30 m ahead, 0.60 m up, 10 deg down; optical frame (z ahead, x right, y down)."""
    pitch = math.radians(10.0)
    cp, sp = math.cos(pitch), math.sin(pitch)
    body_to_optical = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    ry = np.array([[cp, 0.0, sp], [0.0, 1.0, 0.0], [-sp, 0.0, cp]])
    r = ry @ body_to_optical
    pitch_ = math.asin(max(-1.0, min(1.0, -float(r[2, 0]))))
    roll = math.atan2(float(r[2, 1]), float(r[2, 2]))
    yaw = math.atan2(float(r[1, 0]), float(r[0, 0]))
    return Pose3D(0.30, 0.0, 0.60, roll, pitch_, yaw)


def _wall_depth(
    distance_m: float,
    normal_rad: float,
    w: int = 160,
    h: int = 120,
    wall_height_m: float = 0.6,
    body_tilt: tuple[float, float] = (0.0, 0.0),
) -> DepthFrame:
    """A depth image of one vertical plane (``wall_height_m`` high, from the floor) at ``distance_m`` from
    base_link's origin along ``normal_rad`` in the level base frame, on a flat floor; the rays that miss both
    give no return. The rover stands rolled and pitched by ``body_tilt`` (rad) about base_link's origin; the
    frame carries the nominal mount, as a real frame does."""
    f = (w / 2) / math.tan(math.radians(35.0))
    info = CameraInfo(w, h, f, f, w / 2, h / 2, (0.0, 0.0, 0.0, 0.0, 0.0))
    mount = _mount()
    v, u = np.mgrid[0:h, 0:w]
    rays_cam = np.stack([(u - w / 2) / f, (v - h / 2) / f, np.ones((h, w))], axis=-1)  # z = 1 along the axis
    cam = compose(Pose3D(0.0, 0.0, 0.0, body_tilt[0], body_tilt[1], 0.0), mount)
    rot, t = cam.rotation(), cam.translation()
    rays = rays_cam @ rot.T  # base_link directions per unit of depth
    n = np.array([math.cos(normal_rad), math.sin(normal_rad), 0.0])
    along_n = rays @ n
    with np.errstate(divide="ignore", invalid="ignore"):
        z_wall = (distance_m - t @ n) / along_n
        z_floor = -t[2] / rays[..., 2]
    hit_wall = (along_n > 1e-6) & (t[2] + z_wall * rays[..., 2] <= wall_height_m) & (z_wall > 0)
    hit_floor = (rays[..., 2] < -1e-6) & (z_floor > 0)
    depth = np.full((h, w), np.nan)
    depth[hit_floor] = z_floor[hit_floor]
    closer = hit_wall & (~hit_floor | (z_wall < z_floor))
    depth[closer] = z_wall[closer]
    return DepthFrame(1.0, "cam", depth.astype(np.float32), info, mount)


@pytest.mark.parametrize(("distance_m", "normal_deg"), [(2.2, 0.0), (1.5, 25.0), (3.0, -20.0)])
def test_detector_finds_a_wall_plane_at_its_distance_and_bearing(distance_m: float, normal_deg: float) -> None:
    obs = WallDetector().detect(_wall_depth(distance_m, math.radians(normal_deg)))
    assert len(obs) == 1
    o = obs[0]
    assert o.range_m == pytest.approx(distance_m, abs=0.01)
    assert math.degrees(o.normal_rad) == pytest.approx(normal_deg, abs=0.3)
    assert o.length_m >= 0.8 and o.points >= 25
    cov = np.array(o.covariance)
    assert np.all(np.linalg.eigvalsh(cov) > 0.0)


@pytest.mark.parametrize("tilt_deg", [(0.0, 8.0), (-5.0, -6.0)])
def test_a_tilted_rover_sees_the_wall_where_it_is_given_its_tilt(tilt_deg: tuple[float, float]) -> None:
    """Pitched nose down in a dig pit, the floor ahead reads high in base_link: without the tilt it fills the wall
    band and the line found is not the wall (or the wall's range is off); with it, the wall is at its range."""
    tilt = (math.radians(tilt_deg[0]), math.radians(tilt_deg[1]))
    frame = _wall_depth(4.0, 0.0, wall_height_m=1.2, body_tilt=tilt)
    level = WallDetector().detect(frame, tilt)
    assert len(level) >= 1
    assert level[0].range_m == pytest.approx(4.0, abs=0.03)
    assert math.degrees(level[0].normal_rad) == pytest.approx(0.0, abs=0.5)
    blind = WallDetector().detect(frame)
    assert not blind or abs(blind[0].range_m - 4.0) > 0.05 or abs(math.degrees(blind[0].normal_rad)) > 0.5


def test_a_bad_tilt_is_refused() -> None:
    with pytest.raises(ValueError, match="tilt_rad"):
        WallDetector().detect(_wall_depth(2.0, 0.0), (0.0, math.nan))


def test_low_things_are_not_walls() -> None:
    """A surface below ``z_min_m`` (a boulder, the fiducial bar, a berm) gives no wall."""
    frame = _wall_depth(2.0, 0.0)
    cfg = WallConfig(z_min_m=0.65)  # the plane stops at 0.6 m: nothing above it
    assert WallDetector(cfg).detect(frame) == ()


def test_fit_wall_line_recovers_a_noisy_line_and_its_uncertainty_grows_with_noise() -> None:
    rng = np.random.default_rng(3)
    t = np.linspace(-1.0, 1.0, 200)
    phi, r = math.radians(30.0), 2.0
    n = np.array([math.cos(phi), math.sin(phi)])
    tang = np.array([-n[1], n[0]])
    cfg = WallConfig(range_floor_m=0.0, phi_floor_rad=0.0)
    sig = []
    for noise in (0.005, 0.02):
        pts = r * n + t[:, None] * tang + rng.normal(0.0, noise, (200, 1)) * n
        o = fit_wall_line(pts, cfg, 0.0)
        assert o is not None
        assert o.range_m == pytest.approx(r, abs=4 * noise)
        assert o.normal_rad == pytest.approx(phi, abs=math.radians(2.0))
        sig.append(math.sqrt(o.covariance[1][1]))
    assert sig[1] > 2.0 * sig[0]
    assert fit_wall_line(np.zeros((5, 2)), cfg, 0.0) is None  # too few points
    short = 2.0 * n + np.linspace(-0.2, 0.2, 50)[:, None] * tang
    assert fit_wall_line(short, cfg, 0.0) is None  # 0.4 m: shorter than min_length_m


def _ekf(x: float, y: float, yaw: float, sigma_m: float = 0.1) -> LandmarkEkf:
    ekf = LandmarkEkf(
        Pose2D(x, y, yaw), np.diag([sigma_m**2, sigma_m**2, math.radians(3.0) ** 2]), (), LandmarkEkfParams()
    )
    ekf.predict(0.0, 0.0, 0.0)
    return ekf


def _seen(true: Pose2D, wall: WallLine, stamp_s: float = 0.0) -> WallObservation:
    nx, ny = math.cos(wall.normal_rad), math.sin(wall.normal_rad)
    r = wall.offset_m - nx * true.x_m - ny * true.y_m
    phi = math.remainder(wall.normal_rad - true.yaw_rad, math.tau)
    return WallObservation(stamp_s, r, phi, ((0.02**2, 0.0), (0.0, math.radians(0.75) ** 2)), 2.0, 500)


def test_wall_update_corrects_the_distance_and_heading_and_not_along_the_wall() -> None:
    true = Pose2D(5.9, 2.285, 0.0)
    ekf = _ekf(5.8, 2.385, math.radians(2.0))  # 10 cm short, 10 cm to the left, 2 deg off
    far_wall = UCF_WALLS[1]  # x = 8.10, facing it
    assert ekf.update_wall(_seen(true, far_wall), UCF_WALLS) == UpdateResult.ACCEPTED
    x, y, yaw = ekf.mean[:3]
    assert abs(x - true.x_m) < 0.02  # the distance to the wall is fixed
    assert abs(math.degrees(yaw)) < 0.8  # and the heading
    assert abs(y - 2.385) < 0.03  # along the wall: not observable, left (nearly) as it was
    cov = ekf.pose_block_covariance
    assert cov[0, 0] < 0.02**2 * 1.5 and cov[1, 1] > 0.05**2


def test_wall_update_picks_the_wall_it_fits_and_gates_what_fits_none() -> None:
    true = Pose2D(1.25, 1.0, 0.0)
    ekf = _ekf(1.25, 1.05, 0.0)
    side = UCF_WALLS[0]  # y = 0, on the right
    assert ekf.update_wall(_seen(true, side), UCF_WALLS) == UpdateResult.ACCEPTED
    assert abs(ekf.mean[1] - 1.0) < 0.02 and ekf.wall_accepted_count == 1
    bogus = WallObservation(0.0, 0.4, math.radians(60.0), ((1e-4, 0.0), (0.0, 1e-4)), 1.0, 50)
    assert ekf.update_wall(bogus, UCF_WALLS) == UpdateResult.GATED
    assert ekf.update_wall(_seen(true, side), ()) == UpdateResult.UNKNOWN
    bad = WallObservation(0.0, 1.0, 0.0, ((0.0, 0.0), (0.0, 1e-4)), 1.0, 50)
    with pytest.raises(ValueError, match="positive definite"):
        ekf.update_wall(bad, UCF_WALLS)


def test_arena_walls_of_the_presets() -> None:
    walls = PRESET_ZONES["ucf"].arena_walls()
    assert len(walls) == 4
    inside = Pose2D(4.0, 2.0, 0.0)
    for w in walls:  # a rover inside the arena is in front of every wall
        assert w.offset_m - math.cos(w.normal_rad) * inside.x_m - math.sin(w.normal_rad) * inside.y_m > 0.0
    assert PRESET_ZONES["open"].arena_walls() == ()


def rendered_depth(site: Any, pose: Pose2D) -> tuple[DepthFrame, Pose2D]:
    """The sim's depth frame (and the rover's true pose) for a rover placed at ``pose`` on ``site`` (a
    ``sim.sites.Site``), after 24 physics steps to settle."""
    from sim.world import World

    world = World(1, (), site=site)
    try:
        rover = world.add_rover("r", pose)
        for _ in range(24):
            world.step()
        assert rover.depth is not None
        frame = rover.depth.read()
        assert frame is not None
        return frame, rover.true_pose()
    finally:
        world.close()


@pytest.mark.parametrize(
    ("x", "y", "yaw"),
    [(5.9, 2.285, 0.0), (1.25, 1.0, 0.0), (1.25, 3.3, -math.pi / 2)],
)
def test_walls_in_rendered_depth_of_the_ucf_arena(x: float, y: float, yaw: float) -> None:
    """The sim's rendered depth (160x120) at the dump pose, the start and the dig pose: every wall line found is
    one of the arena's sides, within 1 cm and 0.3 deg of the truth."""
    pytest.importorskip("pybullet")
    from sim.sites import make_site, preset

    frame, true = rendered_depth(make_site(preset("ucf"), 1), Pose2D(x, y, yaw))
    seen = WallDetector().detect(frame)
    assert seen
    for o in seen:
        errors = []
        for w in UCF_WALLS:
            expect = _seen(true, w)
            errors.append(
                (abs(o.range_m - expect.range_m), abs(math.remainder(o.normal_rad - expect.normal_rad, math.tau)))
            )
        dr, dphi = min(errors, key=lambda e: e[0] + e[1])
        assert dr < 0.01 and math.degrees(dphi) < 0.3, (o, dr, math.degrees(dphi))
