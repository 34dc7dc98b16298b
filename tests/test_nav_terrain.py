"""The terrain model's frame gating and driven-ground clearing (ray-cast synthetic depth, no PyBullet)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from test_perception_hazards import ray_cast_depth

from autonomy.mission.site_zones import Box
from autonomy.msgs import DepthFrame, Pose2D
from autonomy.navigation.costmap import LETHAL
from autonomy.runtime.terrain import TerrainModel, TerrainParams

SITE = Box(0.0, 0.0, 6.0, 4.0)


def _model(**kw: object) -> TerrainModel:
    return TerrainModel(replace(TerrainParams(), **kw), Pose2D(1.0, 2.0, 0.0), 0.0, SITE)  # type: ignore[arg-type]


def _rock_ahead() -> tuple[TerrainModel, Pose2D, DepthFrame]:
    """A model that fused 3 frames of a rock 2 m ahead of the rover at (1, 2): the rock at map (3.0, 2.0)."""
    t = _model()
    pose = Pose2D(1.0, 2.0, 0.0)
    frame = ray_cast_depth([(2.0, 0.0, 0.2)], [])
    for _ in range(3):
        t.fuse(frame, pose)
    return t, pose, frame


def test_a_standing_rover_fuses_one_frame_in_refuse_every() -> None:
    frame = ray_cast_depth([(2.0, 0.0, 0.2)], [])
    t = _model()
    pose = Pose2D(1.0, 2.0, 0.0)
    used = [t.fuse(frame, pose) for _ in range(12)]
    assert used[0] > 0 and all(u == 0 for u in used[1:10]) and used[10] > 0  # every 10th while standing
    assert t.frames_skipped == 10
    assert t.fuse(frame, Pose2D(1.05, 2.0, 0.0)) > 0  # moved 5 cm: fused
    every = _model(refuse_distance_m=0.0)
    assert all(every.fuse(frame, pose) > 0 for _ in range(3))


def test_ground_the_wheelbase_covered_is_cleared_and_the_rest_kept() -> None:
    t, pose, frame = _rock_ahead()
    cm = t.costmap()
    assert cm.cost_at(3.0, 2.0) == LETHAL
    t.mark_driven(Pose2D(3.0, 2.0, 0.0))  # (as if the map were wrong there and the rover drove through)
    cm = t.costmap()
    assert cm.cost_at(3.0, 2.0) < LETHAL
    # 0.32 m a side
    assert t.driven[t.grid().world_to_cell(3.0, 2.3)] and not t.driven[t.grid().world_to_cell(3.0, 2.4)]
    off = _model(clear_driven=False)
    for _ in range(3):
        off.fuse(frame, pose)
    off.mark_driven(Pose2D(3.0, 2.0, 0.0))
    assert off.costmap().cost_at(3.0, 2.0) == LETHAL and not np.any(off.driven)


def test_a_wide_driven_box_clears_the_rocks_only_inside_the_wheels() -> None:
    """The berm build clears the map's seams 0.45 m a side of the track, but a rock's hazard votes only under
    ``driven_hazard_half_width_m``: a rover passing with the rock's edge 0.4 m to its side leaves the rock
    lethal (with the whole box, it shaved it)."""
    frame = ray_cast_depth([(2.0, 0.0, 0.2)], [])
    pose = Pose2D(1.0, 2.0, 0.0)
    for core, kept in ((None, False), (0.32, True)):
        t = _model(driven_box_m=(-0.40, 0.40, 0.45), driven_hazard_half_width_m=core)
        for _ in range(3):
            t.fuse(frame, pose)
        assert t.costmap().cost_at(3.0, 2.0) == LETHAL
        t.mark_driven(Pose2D(3.0, 1.6, 0.0))  # the rock's centre 0.4 m to the left of base_link
        assert t.driven[t.grid().world_to_cell(3.0, 2.0)]  # inside the 0.45 m box either way
        assert (t.costmap().cost_at(3.0, 2.0) == LETHAL) == kept
    with pytest.raises(ValueError, match="driven_hazard_half_width_m"):
        TerrainParams(driven_hazard_half_width_m=0.0)


def test_clearing_forgets_the_map_beyond_the_kept_radius_and_fresh_frames_rebuild_it() -> None:
    t, pose, frame = _rock_ahead()
    assert t.costmap().cost_at(3.0, 2.0) == LETHAL
    seen_near = t.map.height_at(2.3, 2.0)  # 1.3 m ahead: kept
    assert np.isfinite(seen_near)
    forgotten = t.clear_except_around(pose, 1.5)
    assert forgotten > 0 and t.map_clears == 1
    assert t.costmap().cost_at(3.0, 2.0) < LETHAL  # the rock's cells: unknown again (graded, not lethal)
    assert np.isnan(t.map.height_at(3.0, 2.0)) and np.array_equal(t.map.height_at(2.3, 2.0), seen_near)
    for _ in range(3):
        t.fuse(frame, pose)  # seen again: back
    assert t.costmap().cost_at(3.0, 2.0) == LETHAL


def test_the_band_inside_the_known_site_edge_shows_only_the_edge() -> None:
    """Hazard votes within ``site_edge_clear_m`` of the site's edge (the arena wall's own face, read 10-12 cm
    into the arena) are dropped: the edge itself is lethal. What reaches past the band still blocks."""
    pose = Pose2D(3.9, 2.0, 0.0)
    frame = ray_cast_depth([(2.0, 0.0, 0.12)], [])  # a rock at map (5.9, 2.0), 0.1 m inside the edge (x = 6)
    costs = {}
    for band in (0.0, 0.15):
        t = _model(site_edge_clear_m=band)
        for _ in range(3):
            t.fuse(frame, pose)
        cm = t.costmap()
        costs[band] = (cm.cost_at(5.88, 2.0), cm.cost_at(5.81, 2.0), cm.cost_at(6.05, 2.0))
    assert costs[0.0][0] == LETHAL and costs[0.15][0] < LETHAL  # inside the band: the edge's inflation only
    assert costs[0.0][1] == LETHAL and costs[0.15][1] == LETHAL  # past the band: still the rock
    assert costs[0.15][2] == LETHAL  # outside the site


def test_a_frame_from_a_pitched_rover_is_fused_level_with_the_tilt_given() -> None:
    """Pitched 8 deg nose down and rolled 3 deg (the rover in its own trench), the flat floor 1-4 m ahead
    lies at z = 0. Fused as if level, it reads tens of cm low far out (a false pit); with the tilt it stays
    within 1 cm (the tilt as the pipeline's ``TiltFilter`` reports it: positive pitch nose down)."""
    tilt = (math.radians(3.0), math.radians(8.0))
    frame = ray_cast_depth([], [], body_tilt=tilt)
    pose = Pose2D(1.0, 2.0, 0.0)
    for given, worst in ((None, 0.25), (tilt, 0.01)):
        t = _model(register_heights=False)
        assert t.fuse(frame, pose, given) > 0
        h = t.map.heights_m
        xx, _ = t.map.cell_centres()
        far = np.isfinite(h) & (xx > 3.5)
        assert np.count_nonzero(far) > 50
        if given is None:
            assert np.max(np.abs(h[far])) > worst
        else:
            assert np.max(np.abs(h[np.isfinite(h)])) < worst
    with pytest.raises(ValueError, match="tilt_rad"):
        _model().fuse(frame, pose, (0.0, math.nan))
