"""The 2.5D elevation map: fusion, variance, never-seen cells, dynamic terrain, bounded memory, volume."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_perception_hazards import INFO, MOUNT, ray_cast_depth

from autonomy.mapping.elevation_map import ElevationMap, ElevationMapConfig, compose
from autonomy.msgs import Pose3D
from autonomy.perception.volume import OrientedBox

SENSOR = np.array([0.0, 0.0, 0.6])


def _ground(
    rng: np.random.Generator,
    height_fn: object,
    n: int = 60_000,
    x: tuple[float, float] = (0.5, 3.0),
    y: tuple[float, float] = (-1.0, 1.0),
    noise_m: float = 0.004,
) -> np.ndarray:
    px = rng.uniform(*x, n)
    py = rng.uniform(*y, n)
    pz = height_fn(px, py) + rng.normal(0.0, noise_m, n)  # type: ignore[operator]
    return np.column_stack([px, py, pz])


def _flat(h: float):  # type: ignore[no-untyped-def]
    return lambda x, y: np.full_like(x, h)


def _mound(x, y):  # type: ignore[no-untyped-def]
    """A 0.5 m x 0.5 m x 0.2 m box on flat ground at z = 0, cell-aligned: x in [1.5, 2.0], y in [-0.25, 0.25]."""
    return np.where((x >= 1.5) & (x < 2.0) & (y >= -0.25) & (y < 0.25), 0.2, 0.0)


def test_flat_ground_height_and_shrinking_variance() -> None:
    rng = np.random.default_rng(1)
    m = ElevationMap()
    var_after = []
    for _ in range(20):
        used = m.fuse_points(_ground(rng, _flat(0.1)), SENSOR)
        assert used == 60_000
        var_after.append(float(np.median(m.variance_at(np.array([1.52, 2.02]), np.array([0.02, -0.52])))))
    inner = m.height_at(*np.meshgrid(np.arange(0.6, 2.9, 0.05), np.arange(-0.9, 0.9, 0.05)))
    assert np.all(np.isfinite(inner))
    assert abs(float(np.mean(inner)) - 0.1) < 1e-3
    assert float(np.max(np.abs(inner - 0.1))) < 0.01
    assert var_after[0] > var_after[4] > var_after[19] > 0.0
    assert var_after[19] < var_after[0] / 5.0  # about 1/k after k frames (until the process noise floor)


def test_box_mound_measured_within_tolerance() -> None:
    rng = np.random.default_rng(2)
    m = ElevationMap()
    for _ in range(10):
        m.fuse_points(_ground(rng, _mound), SENSOR)
    gx, gy = np.meshgrid(np.arange(1.525, 2.0, 0.05), np.arange(-0.225, 0.25, 0.05))
    np.testing.assert_allclose(m.height_at(gx, gy), 0.2, atol=0.005)
    around = m.height_at(np.array([1.0, 2.5, 1.75, 1.75]), np.array([0.0, 0.0, 0.6, -0.6]))
    np.testing.assert_allclose(around, 0.0, atol=0.005)


def test_never_seen_cells_stay_unknown() -> None:
    rng = np.random.default_rng(3)
    m = ElevationMap()
    m.fuse_points(_ground(rng, _flat(0.0), x=(0.5, 1.5), y=(0.0, 1.0)), SENSOR)
    seen = m.seen
    assert 0 < int(seen.sum()) <= 20 * 20 + 42  # the 1 m x 1 m patch (+ edge cells), nothing else
    assert np.all(np.isnan(m.heights_m[~seen]))
    assert np.all(np.isinf(m.variance_m2[~seen]))
    assert np.isnan(m.height_at(np.array([2.5]), np.array([-0.5])))[0]
    assert np.isnan(m.height_at(np.array([500.0]), np.array([0.0])))[0]  # outside the window
    # points out of range, above the height gate or NaN are ignored
    bad = np.array([[0.1, 0.0, 0.5], [9.0, 0.0, 0.0], [2.0, 0.0, 50.0], [2.0, 0.0, np.nan]])
    assert m.fuse_points(bad, SENSOR) == 0
    assert np.array_equal(m.seen, seen)


def test_dug_hole_resets_confident_cells_but_one_outlier_frame_does_not() -> None:
    rng = np.random.default_rng(4)
    m = ElevationMap(ElevationMapConfig(reset_after_frames=2))
    for _ in range(20):
        m.fuse_points(_ground(rng, _flat(0.0)), SENSOR)

    def hole(x, y):  # type: ignore[no-untyped-def]
        return np.where((x >= 1.5) & (x < 1.8) & (y >= 0.0) & (y < 0.3), -0.1, 0.0)

    centre = (np.array([1.625]), np.array([0.125]))
    m.fuse_points(_ground(rng, hole), SENSOR)  # one frame: held, not averaged in
    assert abs(float(m.height_at(*centre)[0])) < 0.005
    m.fuse_points(_ground(rng, _flat(0.0)), SENSOR)  # the disagreement was not consistent: nothing changes
    assert abs(float(m.height_at(*centre)[0])) < 0.005
    m.fuse_points(_ground(rng, hole), SENSOR)
    m.fuse_points(_ground(rng, hole), SENSOR)  # two consecutive frames: the cell is reset to the hole
    assert abs(float(m.height_at(*centre)[0]) + 0.1) < 0.005
    assert abs(float(m.height_at(np.array([2.5]), np.array([-0.5]))[0])) < 0.005  # elsewhere unchanged
    # an averaging filter would still be near 0 after two frames against 20: show the difference
    plain = ElevationMap(ElevationMapConfig(min_change_m=10.0))
    for _ in range(20):
        plain.fuse_points(_ground(rng, _flat(0.0)), SENSOR)
    for _ in range(2):
        plain.fuse_points(_ground(rng, hole), SENSOR)
    assert float(plain.height_at(*centre)[0]) > -0.03


def test_bounded_memory_when_the_rover_moves() -> None:
    rng = np.random.default_rng(5)
    m = ElevationMap(ElevationMapConfig(size_cells=120, recentre_distance_m=1.0))  # 6 m window
    nbytes = m.nbytes
    m.fuse_points(_ground(rng, _mound), SENSOR)
    probe = (np.array([1.75, 1.0]), np.array([0.0, 0.5]))
    before = m.height_at(*probe)
    assert not m.follow(0.5, 0.0)  # within the recentre distance: nothing moves
    assert m.follow(1.5, 0.3)  # moved, the overlap is kept at the same map position
    np.testing.assert_array_equal(m.height_at(*probe), before)
    for k in range(1, 41):  # drive 40 m east, mapping around the rover
        x = 1.0 * k
        m.follow(x, 0.0)
        m.fuse_points(_ground(rng, _flat(0.0), x=(x + 0.5, x + 2.5)), np.array([x, 0.0, 0.6]))
        assert m.nbytes == nbytes and m.shape == (120, 120)
    assert np.all(np.isnan(m.height_at(*probe)))  # far behind: forgotten
    assert m.centre_m[0] > 36.0
    assert int(m.seen.sum()) <= 120 * 120


def test_fixed_grid_never_moves() -> None:
    m = ElevationMap(ElevationMapConfig(size_cells=40, recentre_distance_m=None), centre_xy_m=(1.0, 0.0))
    assert not m.follow(100.0, 0.0)
    assert m.origin_m == pytest.approx((0.0, -1.0))


def test_volume_in_a_box_matches_the_analytic_mound() -> None:
    rng = np.random.default_rng(6)
    m = ElevationMap()
    for _ in range(10):
        m.fuse_points(_ground(rng, _mound, noise_m=0.002), SENSOR)
    box = OrientedBox.from_bounds(1.3, 2.2, -0.45, 0.45)
    res = m.volume_above(box, 0.0)
    assert res.unseen_cells == 0
    assert res.volume_m3 == pytest.approx(0.5 * 0.5 * 0.2, rel=0.03)
    ref = np.zeros(m.shape)
    assert m.volume_above(box, ref).volume_m3 == pytest.approx(res.volume_m3)
    # a box half outside what was seen reports the unseen cells
    far = m.volume_above(OrientedBox.from_bounds(2.8, 3.4, -0.2, 0.2), 0.0)
    assert far.unseen_cells > 0 and far.seen_cells > 0
    with pytest.raises(ValueError, match="reference grid"):
        m.volume_above(box, np.zeros((3, 3)))


def test_depth_frame_fused_in_the_map_frame() -> None:
    frame = ray_cast_depth([], [])  # flat ground at base_link z = 0, camera MOUNT, no noise
    base = Pose3D(2.0, 1.0, 0.0, yaw_rad=0.5)
    m = ElevationMap()
    used = m.fuse_depth(frame, base)
    assert used > 10_000
    h = m.heights_m[m.seen]
    np.testing.assert_allclose(h, 0.0, atol=1e-6)
    xx, yy = m.cell_centres()
    dx, dy = xx[m.seen] - base.x_m, yy[m.seen] - base.y_m
    ahead = dx * math.cos(0.5) + dy * math.sin(0.5)
    side = -dx * math.sin(0.5) + dy * math.cos(0.5)
    assert float(np.min(ahead)) > 0.3 and abs(float(np.mean(side))) < 0.1  # in front of the rover
    cam = compose(base, MOUNT)
    np.testing.assert_allclose(cam.rotation(), base.rotation() @ MOUNT.rotation(), atol=1e-12)
    assert frame.info == INFO


def test_bad_input_is_rejected_clearly() -> None:
    m = ElevationMap()
    with pytest.raises(ValueError, match=r"points must be \(n, 3\)"):
        m.fuse_points(np.zeros((4, 2)), SENSOR)
    with pytest.raises(ValueError, match="sensor origin"):
        m.fuse_points(np.zeros((4, 3)), np.array([0.0, np.nan, 0.0]))
    with pytest.raises(ValueError, match="cell_m"):
        ElevationMapConfig(cell_m=0.0)
    with pytest.raises(ValueError, match="recentre_distance_m"):
        ElevationMapConfig(size_cells=10, recentre_distance_m=5.0)


def test_same_seed_same_map() -> None:
    maps = []
    for _ in range(2):
        rng = np.random.default_rng(7)
        m = ElevationMap()
        for _ in range(3):
            m.fuse_points(_ground(rng, _mound), SENSOR)
        maps.append(m.heights_m)
    np.testing.assert_array_equal(maps[0], maps[1])


def test_measurement_variance_grows_with_range() -> None:
    cfg = ElevationMapConfig()
    m = ElevationMap(cfg)
    sensor = np.array([0.0, 0.0, 0.0])
    m.fuse_points(np.array([[2.025, 0.025, 0.0], [4.025, 0.025, 0.0]]), sensor)  # one point per cell
    near, far = m.variance_at(np.array([2.025, 4.025]), np.array([0.025, 0.025]))
    sigma = [cfg.sigma_ref_m * (math.hypot(x, 0.025) / cfg.range_ref_m) ** 2 for x in (2.025, 4.025)]
    assert near == pytest.approx(sigma[0] ** 2, rel=1e-9) and far == pytest.approx(sigma[1] ** 2, rel=1e-9)
    assert far / near > 15.0  # sigma ~ r^2: variance ~ r^4 (twice the range: about 16x)


def test_dumped_pile_resets_too() -> None:
    rng = np.random.default_rng(8)
    m = ElevationMap()
    for _ in range(20):
        m.fuse_points(_ground(rng, _flat(0.0)), SENSOR)
    for _ in range(2):
        m.fuse_points(_ground(rng, _mound), SENSOR)
    np.testing.assert_allclose(m.height_at(np.array([1.75]), np.array([0.0])), 0.2, atol=0.005)


def test_mapping_bench_reports_json() -> None:
    pytest.importorskip("pybullet")  # the bench builds its camera mount with sim.backend
    import json

    from targets.bench_mapping import run_mapping_bench

    res = run_mapping_bench(repeats=5, n_points=20_000, loop_sample=500)
    json.dumps(res, allow_nan=False)
    for key in ("points_300k", "naive_add_at", "depth_640x480"):
        assert res[key]["p50_ms"] > 0.0 and res[key]["mpoints_per_s"] > 0.0
    assert res["depth_640x480"]["points_used"] > 100_000
    assert res["python_loop"]["mpoints_per_s_extrapolated"] > 0.0


def test_depth_path_matches_the_depth_projector_path_with_distortion_and_bad_pixels() -> None:
    from dataclasses import replace

    from autonomy.perception.hazards import DepthProjector

    frame = ray_cast_depth([(2.0, 0.3, 0.15)], [(2.5, -0.4, 0.2, 0.1)], noise=0.003)
    depth = frame.depth_m.copy()
    depth[::7, ::5] = 0.0  # no-return pixels written as 0 or negative by some drivers
    depth[3::11, ::3] = -1.0
    frame = replace(frame, depth_m=depth, info=replace(INFO, distortion=(0.05, -0.01, 0.0, 0.0, 0.0)))
    base = Pose3D(-1.0, 2.0, 0.1, roll_rad=0.02, pitch_rad=-0.03, yaw_rad=2.5)
    fast = ElevationMap()
    used = fast.fuse_depth(frame, base)
    ref = ElevationMap()
    cam = compose(base, frame.mount)
    ref_used = ref.fuse_points(DepthProjector(frame.info).points_in_base(frame.depth_m, cam), cam.translation())
    assert used == ref_used > 10_000
    np.testing.assert_array_equal(fast.seen, ref.seen)
    np.testing.assert_allclose(fast.heights_m[fast.seen], ref.heights_m[ref.seen], atol=1e-9)
    np.testing.assert_allclose(fast.variance_m2[fast.seen], ref.variance_m2[ref.seen], rtol=1e-6)


@pytest.mark.parametrize("register", [False, True])
def test_frame_with_wrong_height_and_pitch_is_registered_to_the_map(register: bool) -> None:
    """The base pose's z and pitch are guesses (level, on the ground) on a slope: a second frame fused with a
    0.1 m / -0.03 rad error lands as a tilted, offset sheet over the first; with ``register_heights`` the frame's
    datum is fitted against the confident cells it overlaps and the map stays flat."""
    frame = ray_cast_depth([], [])  # flat ground at z = 0 seen from a level base_link on it
    cfg = ElevationMapConfig(
        size_cells=200, recentre_distance_m=None, min_range_m=1.0, max_range_m=4.0, register_heights=register
    )
    m = ElevationMap(cfg, (2.0, 0.0))
    m.fuse_depth(frame, Pose3D(0.0, 0.0, 0.0))
    assert m.last_registration is None  # nothing to register against yet
    m.fuse_depth(frame, Pose3D(0.8, 0.0, 0.1, 0.0, -0.03, 0.0))  # the true pose is (0.8, 0, 0), level
    h = m.heights_m[m.seen]
    if register:
        reg = m.last_registration
        assert reg is not None and abs(reg[0] - 0.1) < 0.01
        assert float(np.max(np.abs(h))) < 0.01
    else:
        assert float(np.max(np.abs(h))) > 0.05


def test_forget_outside_keeps_the_disc_and_forgets_the_rest() -> None:
    m = ElevationMap(ElevationMapConfig(size_cells=40, cell_m=0.1, recentre_distance_m=None), (0.0, 0.0))
    xs, ys = np.meshgrid(np.linspace(-1.9, 1.9, 60), np.linspace(-1.9, 1.9, 60))
    pts = np.column_stack([xs.ravel(), ys.ravel(), np.full(xs.size, 0.1)])
    m.fuse_points(pts, (0.0, 0.0, 1.0))
    seen = int(np.count_nonzero(m.seen))
    n = m.forget_outside(0.0, 0.0, 1.0)
    assert 0 < n < seen and int(np.count_nonzero(m.seen)) == seen - n
    assert np.isfinite(m.height_at(0.5, 0.0)) and np.isnan(m.height_at(1.5, 0.0))
    assert np.isinf(m.variance_at(1.5, 0.0))
    with pytest.raises(ValueError, match="forget_outside"):
        m.forget_outside(0.0, float("nan"), 1.0)
