"""Fiducial pose against rendered ground truth (issue 4): a 0.20 m tag at 1 and 2 m, rendered by the simulator."""

from __future__ import annotations

from typing import Any

import pytest

from targets.bench_perception import _fiducial_ground_truth_suite

ROVER = "regolith rover_fiducial_detector"


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return _fiducial_ground_truth_suite(seed=3, poses_per_distance=2, distances_m=(1.0, 2.0))


@pytest.mark.slow  # 8 rendered views (a world each): ~5-10 s on a shared machine
def test_rendered_tags_found_and_positioned_within_1cm(result: dict[str, Any]) -> None:
    for res in ("640x480 rendered", "1280x720 rendered"):
        entry = result[res][ROVER]
        assert all(v.split("/")[0] == v.split("/")[1] for v in entry["recall_by_pixel_size"].values()), entry
        for stats in entry["pose_error_by_range"].values():
            assert stats["pos_err_max_cm"] < 1.0, (res, stats)


@pytest.mark.slow
def test_rendered_1280x720_orientation_within_1deg(result: dict[str, Any]) -> None:
    for stats in result["1280x720 rendered"][ROVER]["pose_error_by_range"].values():
        assert stats["rot_err_max_deg"] < 1.0, stats


def test_rendered_ucf_hazards_rocks_found_no_false_obstacles() -> None:
    from targets.bench_perception import _rendered_hazard_suite

    r = _rendered_hazard_suite(seed=1, worlds=1, views_per_obstacle=1)
    found, seen = (int(x) for x in r["rock_30_40cm_recall_within_3m"].split("/"))
    assert seen >= 2 and found == seen
    assert r["false_obstacles_per_100_frames"] == 0.0


def test_rendered_ucf_craters_at_160x120_with_depth_shadow_cue() -> None:
    # The sim's default depth sensor (160x120) with 1 cm depth noise, one world: the cell-mean cue alone
    # finds 2 of 7 craters, the depth-shadow cue 5 (measured), with no false obstacle either way.
    from autonomy.perception.hazards import HazardConfig
    from targets.bench_perception import RENDERED_CRATER_CUES, _render_hazard_views, _score_hazard_views

    views = _render_hazard_views(seed=1, worlds=1, views_per_obstacle=1, depth_noise_sigma_m=0.01)
    plain = _score_hazard_views(views, HazardConfig(stride=1))
    cued = _score_hazard_views(views, RENDERED_CRATER_CUES)
    found_plain, seen = (int(x) for x in plain["crater_40_50cm_recall_within_3m"].split("/"))
    found_cued, seen_cued = (int(x) for x in cued["crater_40_50cm_recall_within_3m"].split("/"))
    assert seen == seen_cued >= 5
    assert found_cued >= found_plain + 2 and found_cued >= 5
    assert cued["rock_30_40cm_recall_within_3m"] == plain["rock_30_40cm_recall_within_3m"]
    assert cued["false_obstacles_per_100_frames"] == 0.0


@pytest.mark.slow
def test_rendered_640x480_pose_fit_within_1cm_and_1deg(result: dict[str, Any]) -> None:
    """Issue 4's pose target at the rover's 640x480: with the pose fitted to the point-sampled rendered image
    (``refine_pose_min_px``) every tag at 1 and 2 m is within 1 cm and 1 deg (the rover's corner-based pose
    reaches 6 deg at 1-2 m on the bench's views)."""
    entry = result["640x480 rendered"]["regolith rover detector + point-sampled pose fit (tags >= 20 px)"]
    for stats in entry["pose_error_by_range"].values():
        assert stats["pos_err_max_cm"] < 1.0, stats
        assert stats["rot_err_max_deg"] < 1.0, stats
