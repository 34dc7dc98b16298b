"""Costmap: layers -> lethal/graded costs, keep-out zones, unknown handling, inflation geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from autonomy.mission.site_zones import Box
from autonomy.navigation.costmap import (
    HAZARD_BLOCKED,
    HAZARD_FREE,
    HAZARD_UNKNOWN,
    INSCRIBED,
    LETHAL,
    Costmap,
    CostmapError,
    CostmapParams,
    GridSpec,
)

GRID = GridSpec(origin_x_m=-1.0, origin_y_m=2.0, resolution_m=0.05, rows=81, cols=81)


def test_inflation_geometry_around_one_lethal_cell() -> None:
    prm = CostmapParams(inscribed_radius_m=0.3, inflation_radius_m=0.8)
    lethal = np.zeros(GRID.shape, dtype=bool)
    lethal[40, 40] = True
    cm = Costmap.from_lethal(GRID, lethal, prm)
    rr, cc = np.mgrid[0:81, 0:81]
    d = np.hypot(rr - 40, cc - 40) * GRID.resolution_m
    assert cm.cost[40, 40] == LETHAL
    inside = (d <= 0.3 - 1e-9) & (d > 0)
    assert np.all(cm.cost[inside] == INSCRIBED)
    beyond = d > 0.8 + 1e-9
    assert np.all(cm.cost[beyond] == 0)
    ring = (d > 0.3 + 1e-9) & (d <= 0.8 - 1e-9)
    assert np.all((cm.cost[ring] > 0) & (cm.cost[ring] < INSCRIBED))
    # the graded cost decays with distance along a row
    row = cm.cost[40, 47:57].astype(int)
    assert np.all(np.diff(row) <= 0)
    # blocked = exactly the disc of the inscribed radius (circular footprint never overlaps the rock)
    assert np.array_equal(cm.blocked, d <= 0.3 + 1e-9)


def test_lethal_from_terrain_thresholds_and_graded_below() -> None:
    prm = CostmapParams(max_slope_deg=20.0, max_step_m=0.1, inscribed_radius_m=0.0, inflation_radius_m=0.0)
    slope = np.zeros(GRID.shape)
    slope[10, 10] = 25.0  # too steep
    slope[20, 20] = 10.0  # graded
    step = np.zeros(GRID.shape)
    step[30, 30] = 0.15  # too high a step
    cm = Costmap.from_layers(GRID, prm, slope_deg=slope, step_m=step)
    assert cm.cost[10, 10] == LETHAL
    assert cm.cost[30, 30] == LETHAL
    assert 0 < cm.cost[20, 20] < INSCRIBED
    assert cm.cost[50, 50] == 0


def test_hazard_classes_and_unknown_configurable() -> None:
    hazard = np.full(GRID.shape, HAZARD_FREE, dtype=np.uint8)
    hazard[5, 5] = HAZARD_BLOCKED
    hazard[60, 60] = HAZARD_UNKNOWN
    small = CostmapParams(inscribed_radius_m=0.0, inflation_radius_m=0.0)
    cm = Costmap.from_layers(GRID, small, hazard=hazard)
    assert cm.cost[5, 5] == LETHAL and cm.cost[60, 60] == LETHAL
    lenient = CostmapParams(inscribed_radius_m=0.0, inflation_radius_m=0.0, unknown_is_lethal=False, unknown_cost=150)
    cm2 = Costmap.from_layers(GRID, lenient, hazard=hazard)
    assert cm2.cost[5, 5] == LETHAL and cm2.cost[60, 60] == 150
    # NaN in an elevation layer is unknown too
    slope = np.zeros(GRID.shape)
    slope[70, 1] = math.nan
    assert Costmap.from_layers(GRID, small, slope_deg=slope).cost[70, 1] == LETHAL


def test_keep_out_boxes_and_polygons_in_map_frame() -> None:
    prm = CostmapParams(inscribed_radius_m=0.0, inflation_radius_m=0.0)
    box = Box(0.0, 3.0, 0.5, 3.5)  # x 0..0.5, y 3..3.5
    tri = [(1.5, 4.5), (2.5, 4.5), (2.0, 5.5)]
    cm = Costmap.from_layers(GRID, prm, keep_out_boxes=[box], keep_out_polygons=[tri])
    assert cm.cost_at(0.25, 3.25) == LETHAL
    assert cm.cost_at(0.6, 3.25) == 0 and cm.cost_at(-0.1, 3.25) == 0
    assert cm.cost_at(0.25, 3.6) == 0
    assert cm.cost_at(2.0, 4.8) == LETHAL
    assert cm.cost_at(1.6, 5.4) == 0
    r, c = GRID.world_to_cell(0.26, 3.26)
    assert GRID.cell_to_world(r, c) == pytest.approx((0.275, 3.275))
    assert cm.cost_at(100.0, 0.0) == LETHAL  # outside the grid


def test_bad_layers_raise_clear_errors() -> None:
    with pytest.raises(CostmapError, match="slope_deg"):
        Costmap.from_layers(GRID, slope_deg=np.zeros((3, 3)))
    with pytest.raises(CostmapError, match="hazard holds codes"):
        Costmap.from_layers(GRID, hazard=np.full(GRID.shape, 7, dtype=np.uint8))
    with pytest.raises(CostmapError, match="polygon 0"):
        Costmap.from_layers(GRID, keep_out_polygons=[[(0.0, 0.0), (1.0, 1.0)]])
    with pytest.raises(CostmapError, match="inflation_radius_m"):
        CostmapParams(inscribed_radius_m=1.0, inflation_radius_m=0.5)


def test_hazard_patch_resampled_into_the_map() -> None:
    from autonomy.msgs import Pose2D
    from autonomy.navigation.costmap import patch_to_map

    cell, width = 0.05, 2.0
    patch = np.full((40, 40), HAZARD_FREE, dtype=np.uint8)  # x 0..2 m ahead, y -1..1 m
    patch[20, 20] = HAZARD_BLOCKED  # base_link (1.025, 0.025)
    grid = GridSpec(0.0, 0.0, 0.05, 100, 100)
    pose = Pose2D(2.0, 1.0, math.pi / 2)  # facing +y: the cell lies at map (1.975, 2.025)
    out = patch_to_map(patch, pose, cell, width, grid, HAZARD_UNKNOWN)
    r, c = grid.world_to_cell(1.975, 2.025)
    assert out[r, c] == HAZARD_BLOCKED
    assert int((out == HAZARD_BLOCKED).sum()) == 1
    assert out[grid.world_to_cell(2.0, 0.5)] == HAZARD_UNKNOWN  # behind the rover: not seen
    assert out[grid.world_to_cell(2.3, 2.5)] == HAZARD_FREE
    slope = patch_to_map(np.zeros((40, 40)), pose, cell, width, grid, math.nan)
    assert slope.dtype == np.float64 and np.isnan(slope[0, 0])
