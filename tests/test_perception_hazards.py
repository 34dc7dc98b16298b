"""Hazards from depth (rocks, craters, traversability) and regolith volume, on ray-cast synthetic depth."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from test_fiducials import mount_pose

from autonomy.mapping.elevation_map import compose
from autonomy.msgs import CameraInfo, DepthFrame, Pose3D
from autonomy.perception.hazards import BLOCKED, CRATER_CUES, FREE, UNKNOWN, HazardConfig, HazardDetector
from autonomy.perception.volume import OrientedBox, volume_above_reference

INFO = CameraInfo(320, 240, 228.5, 228.5, 159.5, 119.5)
CFG = HazardConfig(stride=1)  # 320x240 here: every pixel (a 640x480 camera would use stride 2)
MOUNT = mount_pose(0.30, 0.0, 0.60, pitch_down_rad=math.radians(20.0))


def _roots(o: np.ndarray, d: np.ndarray, c: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    oc = o - c
    a = np.sum(d * d, axis=1)
    b = 2.0 * d @ oc
    cc = float(oc @ oc) - r * r
    disc = b * b - 4 * a * cc
    sq = np.sqrt(np.where(disc >= 0, disc, np.nan))
    return (-b - sq) / (2 * a), (-b + sq) / (2 * a)


def ray_cast_depth(
    rocks: list[tuple[float, float, float]],
    craters: list[tuple[float, float, float, float]],
    noise: float = 0.0,
    body_tilt: tuple[float, float] = (0.0, 0.0),
) -> DepthFrame:
    """Ground z = 0; rocks (x, y, r) are hemispheres; craters (x, y, radius, depth) spherical bowls. The rover
    stands rolled and pitched by ``body_tilt`` (rad) about base_link's origin; the frame carries the nominal
    ``MOUNT`` (base_link <- camera), as a real frame does."""
    v, u = np.mgrid[0 : INFO.height_px, 0 : INFO.width_px]
    rays_cam = np.stack([(u - INFO.cx_px) / INFO.fx_px, (v - INFO.cy_px) / INFO.fy_px, np.ones_like(u, float)], -1)
    cam = compose(Pose3D(0.0, 0.0, 0.0, body_tilt[0], body_tilt[1], 0.0), MOUNT)
    r, o = cam.rotation(), cam.translation()
    d = rays_cam.reshape(-1, 3) @ r.T  # base_link directions; depth (optical z) = t
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(d[:, 2] < -1e-9, -o[2] / d[:, 2], np.inf)
        for cx, cy, rad, depth in craters:
            big_r = (rad * rad + depth * depth) / (2 * depth)
            centre = np.array([cx, cy, big_r - depth])
            hit = o + t[:, None] * d
            inside = np.hypot(hit[:, 0] - cx, hit[:, 1] - cy) < rad
            _, t_far = _roots(o, d, centre, big_r)
            t = np.where(inside & np.isfinite(t_far), t_far, t)
        for cx, cy, rad in rocks:
            t_near, _ = _roots(o, d, np.array([cx, cy, 0.0]), rad)
            t = np.where(np.isfinite(t_near) & (t_near > 0) & (t_near < t), t_near, t)
    depth_img = np.where(np.isfinite(t) & (t < 20.0), t, np.nan).reshape(INFO.height_px, INFO.width_px)
    if noise > 0:
        depth_img = depth_img + np.random.default_rng(0).normal(0.0, noise, depth_img.shape)
    return DepthFrame(0.0, "front", depth_img.astype(np.float32), INFO, MOUNT)


def test_flat_ground_is_free_and_far_cells_unknown() -> None:
    patch = HazardDetector(CFG).detect(ray_cast_depth([], []))
    assert patch.obstacles == ()
    a, b, c = patch.ground_plane
    assert abs(a) < 0.01 and abs(b) < 0.01 and abs(c) < 0.01
    xx, yy = patch.cell_centres()
    near = (xx > 1.0) & (xx < 2.5) & (np.abs(yy) < 0.3)
    assert np.all(patch.traversability[near] == FREE)
    behind = xx < 0.3  # never seen: unknown, and unknown is not traversable
    assert np.all(patch.traversability[behind] == UNKNOWN)
    assert not np.any(patch.traversable[behind])


@pytest.mark.parametrize("noise", [0.0, 0.005])
def test_rock_and_crater_found_at_their_positions(noise: float) -> None:
    frame = ray_cast_depth([(2.0, 0.4, 0.15)], [(2.4, -0.5, 0.22, 0.10)], noise=noise)
    patch = HazardDetector(CFG).detect(frame)
    kinds = {o.kind: o for o in patch.obstacles}
    assert sorted(kinds) == ["crater", "rock"], patch.obstacles
    rock, crater = kinds["rock"], kinds["crater"]
    assert math.hypot(rock.x_m - 2.0, rock.y_m - 0.4) < 0.15
    assert rock.peak_m == pytest.approx(0.15, abs=0.03)
    assert math.hypot(crater.x_m - 2.4, crater.y_m + 0.5) < 0.25
    xx, yy = patch.cell_centres()
    at_rock = np.hypot(xx - 2.0, yy - 0.4) < 0.05
    assert np.any(patch.traversability[at_rock] == BLOCKED)
    assert not np.any(patch.traversable[at_rock])


def test_hazard_config_checked() -> None:
    with pytest.raises(ValueError, match="stride"):
        HazardConfig(stride=0)


def test_volume_inside_oriented_box_and_unseen_cells() -> None:
    cell = 0.02
    y, x = np.mgrid[0:100, 0:150] * cell  # 3 m x 2 m
    ground = 0.01 * x
    berm = ground + np.clip(0.2 - 0.4 * np.abs(x - 1.5), 0.0, None) * (np.abs(y - 1.0) < 0.35)
    box = OrientedBox(1.5, 1.0, 1.1, 0.9, yaw_rad=0.0)
    res = volume_above_reference(berm, (0.0, 0.0), (cell, cell), box, ground)
    expected = 0.5 * 1.0 * 0.2 * 0.7  # triangle cross-section 1 m base x 0.2 m high, 0.7 m long
    assert res.volume_m3 == pytest.approx(expected, rel=0.05)
    assert res.unseen_cells == 0
    holes = berm.copy()
    holes[40:45, :] = np.nan
    res2 = volume_above_reference(holes, (0.0, 0.0), (cell, cell), box, ground)
    assert res2.unseen_cells > 0 and res2.volume_m3 < res.volume_m3
    rotated = OrientedBox(1.5, 1.0, 0.9, 1.1, yaw_rad=math.pi / 2)
    res3 = volume_above_reference(berm, (0.0, 0.0), (cell, cell), rotated, ground)
    assert res3.volume_m3 == pytest.approx(res.volume_m3, rel=1e-9)
    with pytest.raises(ValueError, match="length and width"):
        OrientedBox(0.0, 0.0, 0.0, 1.0)


def test_perception_bench_hazard_and_volume_suites_report_json() -> None:
    import json

    from targets.bench_perception import run_perception_bench

    out = run_perception_bench(suites=["hazards", "volume"], hazard_frames=4, volume_trials=2)
    json.dumps(out)
    assert out["hazards"]["frames"] == 4
    assert out["hazards"]["rock_30cm_recall"] == 1.0
    assert out["volume"]["max_abs_error_pct"] < 5.0
    with pytest.raises(ValueError, match="unknown suites"):
        run_perception_bench(suites=["nope"])


SHADOW_CUES = HazardConfig(
    stride=1,
    crater_shadow_depth_m=0.02,
    crater_shadow_min_rays=2,
    crater_shadow_min_excess_m=0.1,
    crater_shadow_max_range_m=3.0,
)


@pytest.mark.parametrize("x", [2.2, 2.5, 2.8])
def test_depth_shadow_cue_fills_the_hidden_near_part_of_far_craters(x: float) -> None:
    # From 0.6 m up the near rim hides the near half of the bowl: the cell-mean cue sees only the far wall
    # (a small blob centred past the crater), the shadow cue marks the cells under the rays that crossed the
    # ground level inside the bowl.
    frame = ray_cast_depth([], [(x, 0.2, 0.22, 0.10)])
    plain = [o for o in HazardDetector(CFG).detect(frame).obstacles if o.kind == "crater"]
    cued = [o for o in HazardDetector(SHADOW_CUES).detect(frame).obstacles if o.kind == "crater"]
    assert len(plain) == 1 and len(cued) == 1
    assert cued[0].cells >= 3 * plain[0].cells  # area of a 0.22 m radius bowl: about 61 cells
    assert math.hypot(cued[0].x_m - x, cued[0].y_m - 0.2) < 0.05
    assert math.hypot(plain[0].x_m - x, plain[0].y_m - 0.2) > math.hypot(cued[0].x_m - x, cued[0].y_m - 0.2)


@pytest.mark.parametrize("noise", [0.01, 0.02])
def test_depth_shadow_cue_quiet_on_noisy_flat_ground_and_rocks(noise: float) -> None:
    assert HazardDetector(SHADOW_CUES).detect(ray_cast_depth([], [], noise=noise)).obstacles == ()
    kinds = [o.kind for o in HazardDetector(SHADOW_CUES).detect(ray_cast_depth([(2.0, 0.0, 0.15)], [])).obstacles]
    assert kinds == ["rock"]  # the ground hidden behind a rock is not a crater


def test_crater_cue_config_checked() -> None:
    with pytest.raises(ValueError, match="crater cue"):
        HazardConfig(crater_shadow_depth_m=-0.01)
    with pytest.raises(ValueError, match="crater_shadow_min_rays"):
        HazardConfig(crater_shadow_min_rays=0)
    with pytest.raises(ValueError, match="depth_median_px"):
        HazardConfig(depth_median_px=4)
    with pytest.raises(ValueError, match="crater cue"):
        HazardConfig(crater_shadow_min_excess_per_m=-0.01)


def _with_spikes(frame: DepthFrame, count: int, seed: int) -> DepthFrame:
    """Lone depth outliers (+0.3 m: points far below the ground, as a bad return would give) on the ground."""
    rng = np.random.default_rng(seed)
    depth = frame.depth_m.copy()
    rows = rng.integers(INFO.height_px // 2, INFO.height_px, count)
    cols = rng.integers(0, INFO.width_px, count)
    depth[rows, cols] += np.float32(0.3)
    return DepthFrame(frame.stamp_s, frame.camera_id, depth, frame.info, frame.mount)


def test_crater_cues_median_removes_lone_outliers_keeps_craters() -> None:
    cues = replace(CRATER_CUES, stride=1)
    spiky = _with_spikes(ray_cast_depth([], [], noise=0.01), 40, seed=3)
    assert HazardDetector(replace(cues, depth_median_px=0)).detect(spiky).obstacles != ()  # outliers alone: craters
    assert HazardDetector(cues).detect(spiky).obstacles == ()
    for x in (1.6, 2.2, 2.8):
        frame = _with_spikes(ray_cast_depth([(1.5, -0.8, 0.15)], [(x, 0.3, 0.21, 0.10)], noise=0.01), 40, seed=4)
        found = HazardDetector(cues).detect(frame).obstacles
        assert sorted(o.kind for o in found) == ["crater", "rock"]
        (crater,) = [o for o in found if o.kind == "crater"]
        assert math.hypot(crater.x_m - x, crater.y_m - 0.3) < 0.1


def test_shadow_excess_per_metre_raises_the_bar_with_range() -> None:
    frame = ray_cast_depth([], [(2.6, 0.0, 0.21, 0.10)])
    base = replace(CRATER_CUES, stride=1, crater_shadow_min_excess_m=0.0)
    assert any(o.kind == "crater" for o in HazardDetector(base).detect(frame).obstacles)
    strict = replace(base, crater_shadow_min_excess_per_m=1.0)  # 2.6 m past the crossing: no ray qualifies
    plain = HazardDetector(replace(base, crater_shadow_depth_m=0.0)).detect(frame).obstacles
    assert [o.cells for o in HazardDetector(strict).detect(frame).obstacles] == [o.cells for o in plain]


def test_the_ground_beside_a_rock_is_not_blocked() -> None:
    """``step_on_upper_cell`` (the default): on a 15 cm hemisphere the blocked cells end at the rock's own edge
    (cell centres within its radius); the 3x3 max - min step blocks a cell beyond it (out to 0.18 m), the bloat
    that closed a 0.97 m passage at UCF."""
    frame = ray_cast_depth([(2.0, 0.3, 0.15)], [])
    for upper, reach in ((True, 0.15), (False, 0.175)):
        patch = HazardDetector(replace(CFG, step_on_upper_cell=upper, rock_back_fill=False)).detect(frame)
        assert [o.kind for o in patch.obstacles] == ["rock"]
        xx, yy = patch.cell_centres()
        d = np.hypot(xx - 2.0, yy - 0.3)[patch.traversability == BLOCKED]
        assert d.max() == pytest.approx(reach, abs=0.005), upper


@pytest.mark.parametrize("rock", [(2.0, 0.3, 0.2), (2.5, -0.5, 0.25)])
def test_the_far_side_a_rock_hides_is_blocked(rock: tuple[float, float, float]) -> None:
    """The back of a rock is in its own shadow (unknown): ``rock_back_fill`` blocks it, out to the rock's
    apparent width, so every cell of the rock's disc is blocked; without it a third of the disc is unknown and
    a planner takes it for ground it may drive (UCF seed 7: the wheel grazed a boulder's far side)."""
    frame = ray_cast_depth([rock], [])
    xx, yy = HazardDetector(CFG).detect(frame).cell_centres()
    disc = np.hypot(xx - rock[0], yy - rock[1]) < rock[2] - 0.025
    filled = HazardDetector(CFG).detect(frame).traversability
    plain = HazardDetector(replace(CFG, rock_back_fill=False)).detect(frame).traversability
    assert np.all(filled[disc] == BLOCKED)
    assert np.count_nonzero(plain[disc] == UNKNOWN) > disc.sum() // 4
    behind = filled == BLOCKED
    assert np.hypot(xx[behind] - rock[0], yy[behind] - rock[1]).max() < 2.0 * rock[2]  # no farther than its width
    assert np.all(filled[(plain == FREE)] == FREE)  # what the sensor saw free stays free


@pytest.mark.parametrize(("x", "y", "yaw_deg"), [(2.5, 3.6, 54.0), (3.5, 3.5, 90.0), (4.0, 3.5, 120.0)])
def test_an_arena_wall_filling_the_view_does_not_tilt_the_ground(x: float, y: float, yaw_deg: float) -> None:
    """The sim's rendered depth near the UCF north wall (y = 4.57 m), rocks and craters removed. Measured on the
    crossing, seed 7: with every cell in the first plane fit, the plane tilted by up to 25 deg and the ground
    before the wall read as rocks and craters 15-25 cm into the arena, which closed the passage there. With the
    ground prior the plane is level and every blocked cell is the wall."""
    pytest.importorskip("pybullet")
    from test_walls import rendered_depth

    from autonomy.msgs import Pose2D
    from sim.sites import make_site, preset

    site = replace(make_site(preset("ucf"), 7), boulders=(), craters=())
    frame, true = rendered_depth(site, Pose2D(x, y, math.radians(yaw_deg)))
    cfg = HazardConfig(min_range_m=1.0, max_range_m=3.5)  # the rover's terrain model's
    patch = HazardDetector(cfg).detect(frame)
    a, b, c = patch.ground_plane
    assert abs(a) < 0.02 and math.degrees(math.atan(math.hypot(b, c))) < 1.0, patch.ground_plane
    xx, yy = patch.cell_centres()
    blocked = patch.traversability == BLOCKED
    wy = true.y_m + math.sin(true.yaw_rad) * xx[blocked] + math.cos(true.yaw_rad) * yy[blocked]
    assert blocked.any() and float(wy.min()) > 4.57 - 0.15, float(wy.min())
    tilted = HazardDetector(replace(cfg, ground_prior_m=math.inf)).detect(frame).ground_plane
    assert math.degrees(math.atan(math.hypot(tilted[1], tilted[2]))) > 4.0  # the fit without the prior
