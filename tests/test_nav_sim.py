"""Planned navigation in PyBullet on the UCF arena (missions/ucf-crossing.yaml): the costmap the rover builds
from its own depth camera marks the seed's boulders and craters, it plans around them, and (slow) the crossing
to the construction zone and back to the excavation zone, judged by the sim judge."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pybullet", reason="the sim extra (pybullet) is not installed")

from autonomy.mission.mission_file import load_mission
from autonomy.navigation.costmap import INSCRIBED
from autonomy.runtime.pipeline import Pipeline
from targets.sim_run import run_mission_in_sim


def test_depth_costmap_marks_the_obstacles_ahead(repo_root: Path) -> None:
    """15 s of the crossing: the map fused depth frames, the planner planned, and every boulder and crater
    the camera saw (within 3.5 m of the start, in its field of view) is blocked for the rover's centre."""
    from sim.sites import make_site, preset

    mission = load_mission(repo_root / "missions" / "ucf-crossing.yaml")
    got: list[Pipeline] = []
    s = run_mission_in_sim(mission, 1, None, max_steps=300, pipeline_sink=got.append).summary
    assert s["navigation"] == "planned" and s["plans"] >= 1 and s["map_frames_fused"] > 20
    (pipeline,) = got
    assert pipeline.terrain is not None
    cm = pipeline.terrain.costmap()
    site = make_site(preset("ucf"), 1)
    start = mission.rovers[0].start
    centres = [(b.x_m, b.y_m) for b in site.boulders] + [(c.x_m, c.y_m) for c in site.craters]
    ahead = [(x, y) for x, y in centres if 1.0 < x - start.x_m < 3.5 and abs(y - start.y_m) < 0.7 * (x - start.x_m)]
    assert ahead, "seed 1 has obstacles in the camera's view from the start"
    for x, y in ahead:
        assert cm.cost_at(x, y) >= INSCRIBED, (x, y)
    assert s["contacts"] == 0 and s["score"]["crater_crossings"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 7])
def test_ucf_crossing(seed: int, repo_root: Path) -> None:
    """The crossing (all of seeds 1-10 complete; the rover is 0.68 m wide over its wheels and every site keeps a
    0.9 m corridor): completed with no rock contact or crater crossing, both goal poses within 5 cm and 3 deg of
    the truth (issue 6's target; xfail beyond, up to 7 cm). Seed 7 threads a 0.97 m passage between two boulders
    and the north wall: it completes since the hazard detector fits its ground plane from a prior (a wall
    filling the view had tilted it and put false rocks before the wall), drops the 3x3 step bloat, fills the
    hidden far side of each rock, and the terrain model leaves the known walls' own face to the site edge.
    The rover localizes on the arena walls (depth lines matched to the known walls); the navigator's wall view
    at the start of the approach leg removes the sideways slide of the last turn in place. Measured on seeds
    1-10: 9 within 5 cm and 1.6 deg at both poses; seed 5's dump pose is 5.5 cm off."""
    mission = load_mission(repo_root / "missions" / "ucf-crossing.yaml")

    s = run_mission_in_sim(mission, seed, None).summary
    assert s["status"] == "completed", (s["end_reason"], s["navigation_error"])
    assert s["score"]["rock_contacts"] == 0 and s["score"]["crater_crossings"] == 0
    assert s["wall_updates_accepted"] > 100
    errors_m = s["waypoint_true_errors_m"]
    errors_deg = s["waypoint_true_yaw_errors_deg"]
    # no worse than measured (seeds 3 / 7: dump 2.9 / 2.2 cm, dig 2.8 / 1.4 cm, all within 1.3 deg)
    assert all(e is not None and e <= 0.07 for e in errors_m), errors_m
    assert all(e is not None and e <= 3.0 for e in errors_deg), errors_deg
    assert s["localization_ate_m"] <= 0.05 and s["localization_max_error_m"] <= 0.15
    if max(errors_m) > 0.05:  # the target (seed 5's dump pose, not run here, is 5.5 cm off)
        pytest.xfail(f"goal poses {errors_m} m: not all within 5 cm")
