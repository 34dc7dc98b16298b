"""Oriented-footprint lattice planner: the rover's outline at its real heading, turns in place only where the
swept outline is clear, reverse legs, and the navigator driving the plan leg by leg (kinematic, no PyBullet).

Every plan is checked against an independent brute-force test: the outline polygon (grown by nothing) at
poses sampled along each leg and through each turn, against the lethal cell centres (matplotlib's Path)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.path import Path as MplPath

from autonomy.msgs import DriveCommand, Landmark, Pose2D, PoseEstimate, WallLine, wrap_angle_rad
from autonomy.navigation.costmap import LETHAL, Costmap, CostmapParams, GridSpec
from autonomy.navigation.lattice import ROVER_OUTLINE_M, LatticeParams, LatticePlanner, OrientedPath
from autonomy.navigation.planner import NoPathError, NoPathReason, Planner
from autonomy.runtime.navigator import NavigatorParams, PlannedNavigator

RES = 0.05
COV_1CM = ((1e-4, 0.0, 0.0), (0.0, 1e-4, 0.0), (0.0, 0.0, 1e-4))
HULL = np.array(
    [
        (0.73, 0.25),
        (0.40, 0.34),
        (-0.40, 0.34),
        (-0.40, -0.34),
        (0.40, -0.34),
        (0.73, -0.25),
    ]
)


def _costmap(lethal: np.ndarray, grid: GridSpec) -> Costmap:
    return Costmap.from_lethal(grid, lethal, CostmapParams(inscribed_radius_m=0.38, inflation_radius_m=1.0))


def _centres(cm: Costmap) -> np.ndarray:
    rc = np.argwhere(cm.cost == LETHAL)
    return cm.grid.cells_to_world(rc)


def _overlaps(centres: np.ndarray, x: float, y: float, yaw: float) -> bool:
    c, s = math.cos(yaw), math.sin(yaw)
    poly = np.column_stack([x + c * HULL[:, 0] - s * HULL[:, 1], y + s * HULL[:, 0] + c * HULL[:, 1]])
    near = centres[np.hypot(centres[:, 0] - x, centres[:, 1] - y) < 1.0]
    return bool(len(near)) and bool(MplPath(poly).contains_points(near).any())


def _poses(plan: OrientedPath, start_yaw: float, step_m: float = 0.02) -> list[tuple[float, float, float]]:
    """Poses the rover passes through: a turn in place at each vertex, then the straight leg."""
    out: list[tuple[float, float, float]] = []
    yaw = start_yaw
    v = plan.vertices_xy_m
    for i in range(plan.legs):
        target = float(plan.leg_yaw_rad[i])
        d = wrap_angle_rad(target - yaw)
        for t in np.linspace(0.0, 1.0, max(2, int(abs(d) / math.radians(1.0)))):
            out.append((float(v[i, 0]), float(v[i, 1]), yaw + t * d))
        yaw = target
        n = max(2, int(np.hypot(*(v[i + 1] - v[i])) / step_m))
        for t in np.linspace(0.0, 1.0, n):
            p = v[i] + t * (v[i + 1] - v[i])
            out.append((float(p[0]), float(p[1]), yaw))
    if plan.goal_yaw_rad is not None:
        d = wrap_angle_rad(plan.goal_yaw_rad - yaw)
        for t in np.linspace(0.0, 1.0, max(2, int(abs(d) / math.radians(1.0)))):
            out.append((float(v[-1, 0]), float(v[-1, 1]), yaw + t * d))
    return out


def _gap_world(gap_m: float) -> Costmap:
    """A 6 x 4 m yard with a wall across x = 3 m and one gap of ``gap_m`` centred at y = 2 m."""
    grid = GridSpec(0.0, 0.0, RES, 80, 120)
    yy, xx = np.mgrid[0:80, 0:120]
    x, y = (xx + 0.5) * RES, (yy + 0.5) * RES
    lethal = (x > 2.9) & (x < 3.1) & (np.abs(y - 2.0) > gap_m / 2)
    lethal |= (x < 0.05) | (x > 5.95) | (y < 0.05) | (y > 3.95)
    return _costmap(lethal, grid)


def test_outline_kernel_sees_the_bucket_ahead_and_not_behind() -> None:
    grid = GridSpec(0.0, 0.0, RES, 60, 60)
    lethal = np.zeros(grid.shape, dtype=bool)
    r, c = grid.world_to_cell(1.5 + 0.6, 1.5)  # 0.6 m ahead of a rover at (1.5, 1.5) facing +x
    lethal[r, c] = True
    cm = _costmap(lethal, grid)
    p = LatticePlanner()
    assert not p.pose_free(cm, 1.5, 1.5, 0.0)  # the bucket reaches 0.73 m ahead
    assert p.pose_free(cm, 1.5, 1.5, math.pi)  # the rear only 0.40 m
    assert p.pose_free(cm, 1.5, 1.5, math.pi / 2)  # the side 0.34 m


def test_passes_a_gap_the_bucket_safe_circle_cannot() -> None:
    cm = _gap_world(0.9)  # the rover is 0.68 m wide over its wheels; its bucket reaches 0.73 m
    planner = LatticePlanner()
    plan = planner.plan(cm, (1.0, 1.0, 0.0), (5.0, 3.0), 0.0)
    centres = _centres(cm)
    assert not any(_overlaps(centres, *pose) for pose in _poses(plan, 0.0))
    # the legs through the gap run close to straight across it (no turn in place inside it)
    wide = Costmap.from_lethal(
        cm.grid, cm.cost == LETHAL, CostmapParams(inscribed_radius_m=0.73, inflation_radius_m=1.0)
    )
    with pytest.raises(NoPathError):
        Planner().plan(wide, (1.0, 1.0), (5.0, 3.0))


def test_no_path_through_a_gap_narrower_than_the_rover() -> None:
    cm = _gap_world(0.65)  # 0.68 m over the wheels
    with pytest.raises(NoPathError) as e:
        LatticePlanner().plan(cm, (1.0, 1.0, 0.0), (5.0, 3.0), 0.0)
    assert e.value.reason == NoPathReason.UNREACHABLE


def test_goal_pose_whose_outline_overlaps_an_obstacle_is_blocked() -> None:
    cm = _gap_world(1.2)
    with pytest.raises(NoPathError) as e:  # facing the wall 0.5 m away: the bucket would be in it
        LatticePlanner().plan(cm, (1.0, 1.0, 0.0), (2.4, 1.0), 0.0)
    assert e.value.reason == NoPathReason.GOAL_BLOCKED
    plan = LatticePlanner().plan(cm, (1.0, 1.0, 0.0), (2.4, 1.0), math.pi)  # backed up to it: fine
    assert plan.legs >= 1


@pytest.mark.parametrize("seed", [0, 1, 3])
def test_plans_on_random_rock_fields_never_overlap_a_rock(seed: int) -> None:
    grid = GridSpec(0.0, 0.0, RES, 92, 162)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:92, 0:162]
    x, y = (xx + 0.5) * RES, (yy + 0.5) * RES
    lethal = (x < 0.05) | (x > 8.05) | (y < 0.05) | (y > 4.55)
    for _ in range(6):
        cx, cy, r = rng.uniform(2.8, 5.2), rng.uniform(0.5, 4.0), rng.uniform(0.15, 0.25)
        lethal |= np.hypot(x - cx, y - cy) <= r
    cm = _costmap(lethal, grid)
    planner = LatticePlanner()
    plan = planner.plan(cm, (1.25, 1.0, 0.0), (6.5, 2.3), math.pi / 2)  # (seed 2 has no way through)
    centres = _centres(cm)
    assert not any(_overlaps(centres, *pose) for pose in _poses(plan, 0.0))
    assert planner.legs_free(cm, plan)
    again = LatticePlanner().plan(cm, (1.25, 1.0, 0.0), (6.5, 2.3), math.pi / 2)
    assert np.array_equal(plan.vertices_xy_m, again.vertices_xy_m)  # deterministic


def test_backs_out_of_a_dead_end_too_narrow_to_turn_in() -> None:
    grid = GridSpec(0.0, 0.0, RES, 80, 120)
    yy, xx = np.mgrid[0:80, 0:120]
    x, y = (xx + 0.5) * RES, (yy + 0.5) * RES
    lethal = (x < 0.05) | (x > 5.95) | (y < 0.05) | (y > 3.95)
    # a 1.1 m wide corridor from x = 2.5 to its closed end at x = 4.5, open towards -x
    lethal |= (x > 2.5) & (x < 4.6) & ((np.abs(y - 2.0) > 0.55) & (np.abs(y - 2.0) < 0.75))
    lethal |= (x > 4.5) & (x < 4.6) & (np.abs(y - 2.0) < 0.75)
    cm = _costmap(lethal, grid)
    planner = LatticePlanner()
    plan = planner.plan(cm, (3.6, 2.0, 0.0), (1.0, 2.0), 0.0)  # facing the closed end; the bucket cannot turn
    assert bool(plan.leg_reverse[0])
    centres = _centres(cm)
    assert not any(_overlaps(centres, *pose) for pose in _poses(plan, 0.0))
    with pytest.raises(NoPathError):
        LatticePlanner(LatticeParams(reverse_multiplier=0.0)).plan(cm, (3.6, 2.0, 0.0), (1.0, 2.0), 0.0)


def test_bad_parameters_raise() -> None:
    with pytest.raises(ValueError, match="headings"):
        LatticeParams(headings=30)
    with pytest.raises(ValueError, match="reverse_multiplier"):
        LatticeParams(reverse_multiplier=0.5)
    with pytest.raises(ValueError, match="outline_m"):
        LatticeParams(outline_m=((0.0, 0.0), (1.0, 0.0)))
    assert LatticeParams().outline_m == ROVER_OUTLINE_M


def _drive(nav: PlannedNavigator, cm: Costmap, start: Pose2D, steps: int = 6000) -> list[Pose2D]:
    x, y, th = start.x_m, start.y_m, start.yaw_rad
    dt = 0.05
    poses: list[Pose2D] = []
    cov = ((1e-4, 0.0, 0.0), (0.0, 1e-4, 0.0), (0.0, 0.0, 1e-4))
    v = 0.0
    for i in range(steps):
        pose = Pose2D(x, y, th)
        poses.append(pose)
        if i % 10 == 0:
            nav.update_costmap(cm, pose)
        cmd = nav.step(i * dt, PoseEstimate(i * dt, pose, cov), v)
        cmd = nav.guard(cmd, pose).command
        v = cmd.linear_x_mps
        if nav.done or nav.failed:
            break
        th += cmd.angular_z_radps * dt
        x += cmd.linear_x_mps * math.cos(th) * dt
        y += cmd.linear_x_mps * math.sin(th) * dt
    return poses


def test_navigator_drives_the_oriented_plan_leg_by_leg_to_the_pose() -> None:
    cm = _gap_world(1.15)
    goal = Pose2D(5.0, 3.0, math.pi / 2)
    nav = PlannedNavigator([goal])
    assert nav.params.planner == "oriented"
    poses = _drive(nav, cm, Pose2D(1.0, 1.0, 0.0))
    assert nav.done and not nav.failed, nav.last_error
    end = poses[-1]
    assert end.distance_to_m(goal.x_m, goal.y_m) < 0.05
    assert abs(wrap_angle_rad(end.yaw_rad - goal.yaw_rad)) < math.radians(3.0)
    centres = _centres(cm)
    assert not any(_overlaps(centres, p.x_m, p.y_m, p.yaw_rad) for p in poses[::2])


def test_a_goal_without_heading_is_reached_with_any_heading() -> None:
    """An ``(x, y)`` goal (a mission waypoint without ``yaw_rad``) is planned and reached with whatever heading
    the approach gives (a NaN yaw is not a valid Pose2D: a planned mission without headings used to raise)."""
    cm = _gap_world(1.15)
    nav = PlannedNavigator([(5.0, 3.0)])
    poses = _drive(nav, cm, Pose2D(1.0, 1.0, 0.0))
    assert nav.done and not nav.failed, nav.last_error
    assert poses[-1].distance_to_m(5.0, 3.0) < 0.1


def test_navigator_keeps_the_circular_planner_as_an_option() -> None:
    cm = _gap_world(2.0)
    nav = PlannedNavigator([Pose2D(5.0, 3.0, 0.0)], NavigatorParams(planner="circular"))
    _drive(nav, cm, Pose2D(1.0, 1.0, 0.0))
    assert nav.done and nav.path is None and nav.reached == (0,)
    with pytest.raises(ValueError, match="planner"):
        NavigatorParams(planner="lattice")


def test_navigator_falls_back_to_the_centre_plan_when_the_goal_outline_collides() -> None:
    cm = _gap_world(1.2)
    goal = Pose2D(2.4, 1.0, 0.0)  # facing the wall 0.5 m away: the bucket would be in it (a dump over a berm)
    nav = PlannedNavigator([goal])
    nav.update_costmap(cm, Pose2D(1.0, 1.0, 0.0))
    assert nav.circular_fallbacks == 1 and nav.oriented is None and nav.path is not None
    strict = PlannedNavigator([goal], NavigatorParams(circular_fallback=False))
    strict.update_costmap(cm, Pose2D(1.0, 1.0, 0.0))
    assert strict.path is None and "goal_blocked" in strict.last_error


def _drive_drifting(
    nav: PlannedNavigator, cm: Costmap, start: Pose2D, offset: tuple[float, float], landmark_xy: tuple[float, float]
) -> tuple[list[Pose2D], list[bool]]:
    """``_drive`` with an estimate ``offset`` from the truth (odometry drift, sigma 0.3 m) once past the wall
    (x > 3.5 m) until the rover stands facing ``landmark_xy`` (within 30 deg): then a fix (``landmarks_used``
    = 1) removes the drift for good."""
    x, y, th = start.x_m, start.y_m, start.yaw_rad
    dt = 0.05
    poses: list[Pose2D] = []
    fixes: list[bool] = []
    ox, oy = 0.0, 0.0
    drifted = False
    big = ((0.09, 0.0, 0.0), (0.0, 0.09, 0.0), (0.0, 0.0, 1e-4))
    small = ((1e-4, 0.0, 0.0), (0.0, 1e-4, 0.0), (0.0, 0.0, 1e-4))
    v = 0.0
    for i in range(8000):
        truth = Pose2D(x, y, th)
        poses.append(truth)
        bearing = math.atan2(landmark_xy[1] - y, landmark_xy[0] - x)
        fix = abs(v) < 1e-3 and abs(wrap_angle_rad(bearing - th)) < math.radians(30.0)
        if fix:
            ox, oy = 0.0, 0.0
        elif x > 3.5 and not drifted:
            ox, oy = offset
            drifted = True
        fixes.append(fix)
        est = Pose2D(x + ox, y + oy, th)
        if i % 10 == 0:
            nav.update_costmap(cm, est)
        cov = small if (ox, oy) == (0.0, 0.0) else big
        cmd = nav.step(i * dt, PoseEstimate(i * dt, est, cov, landmarks_used=int(fix)), v)
        cmd = nav.guard(cmd, est).command
        v = cmd.linear_x_mps
        if nav.done or nav.failed:
            break
        th += cmd.angular_z_radps * dt
        x += cmd.linear_x_mps * math.cos(th) * dt
        y += cmd.linear_x_mps * math.sin(th) * dt
    return poses, fixes


def test_relocalization_stop_turns_to_the_landmarks_and_reapproaches_the_goal() -> None:
    """A far goal reached by a drifted estimate: the rover turns in place towards the surveyed tags, waits for
    fixes, and approaches the goal again, ending within 5 cm / 3 deg of it in truth (without the landmarks it
    stops where the drift puts it, 14 cm off)."""
    cm = _gap_world(1.15)
    goal = Pose2D(5.0, 3.0, math.pi / 2)
    tag = Landmark(0, 1.0, 0.1, 0.4, 0.2, math.pi / 2)  # 5 m away, facing +y
    start = Pose2D(1.0, 1.0, 0.0)
    blind = PlannedNavigator([goal])
    poses, _ = _drive_drifting(blind, cm, start, (0.1, -0.1), (tag.x_m, tag.y_m))
    assert blind.done and blind.reloc_stops == 0
    assert poses[-1].distance_to_m(goal.x_m, goal.y_m) > 0.1

    nav = PlannedNavigator([goal], landmarks=[tag])
    poses, fixes = _drive_drifting(nav, cm, start, (0.1, -0.1), (tag.x_m, tag.y_m))
    assert nav.done and not nav.failed, nav.last_error
    assert nav.reloc_stops == 1 and nav.reloc_fixes > 0 and any(fixes)
    end = poses[-1]
    assert end.distance_to_m(goal.x_m, goal.y_m) < 0.05
    assert abs(wrap_angle_rad(end.yaw_rad - goal.yaw_rad)) < math.radians(3.0)
    centres = _centres(cm)
    assert not any(_overlaps(centres, p.x_m, p.y_m, p.yaw_rad) for p in poses[::2])


def test_no_relocalization_stop_near_the_landmarks_or_with_a_small_sigma() -> None:
    nav = PlannedNavigator([Pose2D(2.0, 2.0, 0.0)], landmarks=[Landmark(0, 1.0, 0.1, 0.4, 0.2, math.pi / 2)])
    cov = ((0.09, 0.0, 0.0), (0.0, 0.09, 0.0), (0.0, 0.0, 1e-4))
    nav.update_costmap(_gap_world(1.15), Pose2D(2.0, 2.0, 0.0))
    assert not nav._start_reloc(0.0, PoseEstimate(0.0, Pose2D(2.0, 2.0, 0.0), cov))  # 2.1 m from the tag
    assert nav.reloc_heading_rad(Pose2D(1.0, -1.0, 0.0)) is None  # behind the tag's face
    far = Pose2D(5.0, 3.0, 0.0)  # 4.9 m from the tag
    small = ((1e-4, 0.0, 0.0), (0.0, 1e-4, 0.0), (0.0, 0.0, 1e-4))
    assert not nav._start_reloc(0.0, PoseEstimate(0.0, far, small))
    assert nav._start_reloc(0.0, PoseEstimate(0.0, far, cov)) and nav.reloc_stops == 1
    with pytest.raises(ValueError, match="reloc_min_range_m"):
        NavigatorParams(reloc_min_range_m=0.0)
    with pytest.raises(ValueError, match="reloc_view_offsets_rad"):
        NavigatorParams(reloc_view_offsets_rad=())


def test_wall_views_have_their_own_budget_at_each_goal() -> None:
    """A wall view at the start of the final approach leg does not use up the goal's stops: when the turn onto
    the leg slid the rover again (the sigma says so), it looks at a wall once more at the goal; a tag stop made
    at the goal does not take the wall views either. The view faces the wall across the worst axis."""
    yard = _gap_world(1.15)
    walls = [WallLine(0, -math.pi / 2, 0.0), WallLine(1, math.pi / 2, 4.0), WallLine(2, 0.0, 6.0)]
    pose = Pose2D(4.6, 2.2, 0.0)  # 2.2 m from the south wall, 1.8 m from the north one, 1.4 m from the east one
    y_unsure = ((4e-4, 0.0, 0.0), (0.0, 0.01, 0.0), (0.0, 0.0, 1e-4))  # sigma 10 cm across the heading
    nav = PlannedNavigator([Pose2D(5.0, 2.2, 0.0)], walls=walls)
    nav.update_costmap(yard, pose)
    view = nav.wall_view_rad(PoseEstimate(0.0, pose, y_unsure))
    assert view is not None and abs(abs(view) - math.pi / 2) < 1e-9  # the north or south wall, not the east
    stops = nav.params.reloc_max_wall_stops
    assert stops >= 2
    for stop in range(1, stops + 1):
        assert nav._start_reloc(float(stop), PoseEstimate(float(stop), pose, y_unsure))
        assert nav.wall_reloc_stops == stop and nav._reloc_wall
        nav._reloc_phase = ""
    assert not nav._start_reloc(9.0, PoseEstimate(9.0, pose, y_unsure))  # all used at this goal
    small = ((4e-4, 0.0, 0.0), (0.0, 4e-4, 0.0), (0.0, 0.0, 1e-4))  # 2 cm: no view needed
    fresh = PlannedNavigator([Pose2D(5.0, 2.2, 0.0)], walls=walls)
    fresh.update_costmap(yard, pose)
    assert not fresh._start_reloc(0.0, PoseEstimate(0.0, pose, small))
    with pytest.raises(ValueError, match="reloc_max_wall_stops"):
        NavigatorParams(reloc_max_wall_stops=-1)


def test_no_path_asks_for_a_map_clear_before_it_fails() -> None:
    """A map that shows no way (a false ridge across the only gap) is not a failure at once: after
    ``map_clear_after_s`` the navigator asks its owner to forget the map away from the rover (at most
    ``max_map_clears`` times per goal), and with the way open again it drives on to the goal. Without clears
    the same map fails it after ``no_path_timeout_s``."""
    ridge = _gap_world(0.2)  # the gap closed
    open_yard = _gap_world(1.15)
    start, goal = Pose2D(1.0, 1.0, 0.0), Pose2D(5.0, 3.0, math.pi / 2)
    cov = ((1e-4, 0.0, 0.0), (0.0, 1e-4, 0.0), (0.0, 0.0, 1e-4))
    prm = NavigatorParams(map_clear_after_s=2.0, no_path_timeout_s=5.0)
    nav = PlannedNavigator([goal], prm)
    t = 0.0
    while not nav.map_clear_requested and t < 10.0:
        nav.update_costmap(ridge, start)
        nav.step(t, PoseEstimate(t, start, cov), 0.0)
        t += 0.5
    assert nav.map_clear_requested and nav.map_clears == 1 and not nav.failed
    assert 2.0 < t <= 3.5
    nav.map_clear_requested = False  # the owner forgot the ridge: the next costmap shows the gap
    poses = _drive(nav, open_yard, start)
    assert nav.done and not nav.failed, nav.last_error
    assert poses[-1].distance_to_m(goal.x_m, goal.y_m) < 0.05

    never = PlannedNavigator([goal], NavigatorParams(max_map_clears=0, no_path_timeout_s=5.0))
    t = 0.0
    while not never.failed and t < 20.0:
        never.update_costmap(ridge, start)
        never.step(t, PoseEstimate(t, start, cov), 0.0)
        t += 0.5
    assert never.failed and never.map_clears == 0 and 5.0 < t <= 6.5
    with pytest.raises(ValueError, match="max_map_clears"):
        NavigatorParams(max_map_clears=-1)


def test_a_later_leg_blocked_is_replanned_at_the_end_of_the_current_leg() -> None:
    """A new map that blocks a later leg of the plan while the current leg stays clear: the rover finishes the
    current leg and plans from its end (planning from the pose at every map update made the lattice alternate
    between a forward start and a reverse cusp in a flickering gap). With ``finish_leg_first=False`` it plans
    again at once."""
    cm = _gap_world(1.15)
    start = Pose2D(1.0, 1.0, 0.0)
    for finish_first in (True, False):
        nav = PlannedNavigator([Pose2D(5.0, 3.0, math.pi / 2)], NavigatorParams(finish_leg_first=finish_first))
        nav.update_costmap(cm, start)
        plan = nav.oriented
        assert plan is not None and plan.legs >= 3 and nav.plans == 1
        # block a later leg with a lethal disc beside the path, away from the first leg
        a, b = plan.vertices_xy_m[-3], plan.vertices_xy_m[-2]
        mid = (a + b) / 2
        assert math.hypot(mid[0] - start.x_m, mid[1] - start.y_m) > 1.5
        grid = cm.grid
        yy, xx = np.mgrid[0 : grid.rows, 0 : grid.cols]
        x, y = (xx + 0.5) * RES, (yy + 0.5) * RES
        lethal = (cm.cost == LETHAL) | (np.hypot(x - mid[0], y - mid[1]) < 0.1)
        blocked = _costmap(lethal, grid)
        assert not nav.lattice.legs_free(blocked, plan, 0, (start.x_m, start.y_m))
        assert nav.lattice.legs_free(blocked, plan, 0, (start.x_m, start.y_m), to_leg=1)
        nav.update_costmap(blocked, start)
        if not finish_first:
            assert nav.plans == 2
            continue
        assert nav.plans == 1 and nav.oriented is plan  # still driving the first leg
        end = plan.vertices_xy_m[1]
        nav.step(
            0.0,
            PoseEstimate(0.0, Pose2D(float(end[0]), float(end[1]), 0.0), ((1e-4, 0, 0), (0, 1e-4, 0), (0, 0, 1e-4))),
            0.0,
        )
        assert nav.plan_failures == 0, nav.last_error
        assert nav.plans == 2 and nav.oriented is not plan  # planned again from the end of the first leg


def test_guard_creeps_forward_when_a_turn_would_swing_the_rear_into_a_wall_and_backing_is_blocked() -> None:
    """A turn in place would swing the rear corner into the wall just behind; the monitor stops the back-off
    the guard puts in its place; forward is open: the guard creeps forward, so that the turn fits after. With
    a wall just ahead of the bucket too, the rover stands."""
    grid = GridSpec(-3.0, -3.0, 0.05, 120, 120)
    xx = grid.origin_x_m + (np.arange(grid.cols) + 0.5) * grid.resolution_m
    x, _y = np.meshgrid(xx, xx)
    behind = x < -0.41
    nav = PlannedNavigator([Pose2D(2.0, 0.0, 0.0)])
    pose = Pose2D(0.0, 0.0, 0.0)
    nav.update_costmap(_costmap(behind, grid), pose)
    now, least = nav.sweep_clearance_m(pose, 0.5)
    assert least < min(now, nav.params.sweep_margin_m)  # the turn swings the rear corner into the wall
    out = nav.guard(DriveCommand(0.0, 0.0, 0.5), pose)
    assert out.command.linear_x_mps > 0.0 and out.command.angular_z_radps == 0.0
    nav.update_costmap(_costmap(behind | (x > 0.78), grid), pose)
    stuck = nav.guard(DriveCommand(0.0, 0.0, 0.5), pose)
    assert stuck.command.linear_x_mps == 0.0 and stuck.command.angular_z_radps == 0.0
