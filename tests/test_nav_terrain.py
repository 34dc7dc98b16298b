"""The terrain model's frame gating and driven-ground clearing (ray-cast synthetic depth, no PyBullet)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from test_perception_hazards import ray_cast_depth

from autonomy.mission.site_zones import Box
from autonomy.msgs import Pose2D
from autonomy.navigation.costmap import LETHAL
from autonomy.runtime.terrain import TerrainModel, TerrainParams

SITE = Box(0.0, 0.0, 6.0, 4.0)


def _model(**kw: object) -> TerrainModel:
    return TerrainModel(replace(TerrainParams(), **kw), Pose2D(1.0, 2.0, 0.0), 0.0, SITE)  # type: ignore[arg-type]


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
    t = _model()
    pose = Pose2D(1.0, 2.0, 0.0)
    frame = ray_cast_depth([(2.0, 0.0, 0.2)], [])  # a rock 2 m ahead: map (3.0, 2.0)
    for _ in range(3):
        t.fuse(frame, pose)
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
