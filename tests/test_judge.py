"""The judge against hand-computed cases, and the site presets."""

from __future__ import annotations

import numpy as np
import pytest

from sim.judge import (
    Autonomy,
    ContactEvent,
    ElevationScan,
    berm_volume_m3,
    count_contacts,
    count_crater_crossings,
    judge_run,
    lunabotics_score,
)
from sim.sites import PRESETS, Box, Crater, make_site, preset


def test_score_matches_guidebook_worked_example() -> None:
    s = lunabotics_score(77_551, 15.0, 66.0, 36.0)
    assert s.productivity_mass == pytest.approx(344.6, abs=0.1)
    assert s.productivity_energy == pytest.approx(215.4, abs=0.1)
    assert s.total == pytest.approx(344.6 + 215.4, abs=0.2)


@pytest.mark.parametrize(
    ("autonomy", "points"),
    [
        (Autonomy(), 0.0),
        (Autonomy(excavate=True), 75.0),
        (Autonomy(excavate=True, dump=True, travel=True), 375.0),
        (Autonomy(travel=True, full_cycles=1), 450.0),
        (Autonomy(full_cycles=2), 600.0),
        (Autonomy(full_cycles=5), 600.0),
    ],
)
def test_autonomy_points(autonomy: Autonomy, points: float) -> None:
    assert lunabotics_score(0.0, 15.0, 60.0, 10.0, autonomy).autonomy == points


def test_penalties_capped_and_volume_scaling() -> None:
    assert lunabotics_score(0.0, 15.0, 60.0, 10.0, contacts=2).penalties == 60.0
    assert lunabotics_score(0.0, 15.0, 60.0, 10.0, contacts=7).penalties == 90.0
    s = lunabotics_score(12_500, 15.0, 60.0, 10.0, Autonomy(full_cycles=2), autonomy_volume_scaling=True)
    assert s.autonomy_volume_factor == pytest.approx(0.5)
    assert s.autonomy == pytest.approx(300.0)


def test_berm_volume_hand_computed() -> None:
    before = ElevationScan(np.zeros((11, 21)), (0.0, 0.0), (0.1, 0.1))
    after_h = np.zeros((11, 21))
    after_h[2:5, 3:7] = 0.2  # 12 posts x 0.2 m x 0.01 m^2 = 0.024 m^3, inside the box
    after_h[8, 18] = 1.0  # outside the box: not counted
    after_h[6, 5] = -0.3  # a hole in the box does not count against the berm
    after = ElevationScan(after_h, (0.0, 0.0), (0.1, 0.1))
    box = Box(0.0, 0.0, 1.0, 0.7)
    assert berm_volume_m3(before, after, box) == pytest.approx(0.024)


def test_contacts_and_crossings_hand_computed() -> None:
    zone = Box(2.0, 0.0, 5.0, 4.0)
    events = [
        ContactEvent(1.00, "r", 7, 3.0, 1.0),
        ContactEvent(1.01, "r", 7, 3.0, 1.0),  # same contact, consecutive steps
        ContactEvent(5.00, "r", 7, 3.0, 1.0),  # a new touch after a gap
        ContactEvent(5.00, "r", 8, 3.5, 1.0),  # another rock
        ContactEvent(6.00, "r", 9, 1.0, 1.0),  # outside the obstacle zone
    ]
    assert count_contacts(events, zone) == 3
    craters = [Crater(3.0, 2.0, 0.5, 0.1), Crater(1.0, 2.0, 0.5, 0.1)]  # the second lies outside the zone
    path = np.array([[2.0, 2.0], [3.0, 2.0], [4.0, 2.0], [3.0, 2.0], [3.05, 2.0], [2.0, 2.0], [1.0, 2.0]])
    assert count_crater_crossings(path, craters, zone) == 2


def test_judge_run_summary_fields() -> None:
    before = ElevationScan(np.zeros((5, 5)), (0.0, 0.0), (0.1, 0.1))
    after = ElevationScan(np.full((5, 5), 0.01), (0.0, 0.0), (0.1, 0.1))
    rep = judge_run(
        before,
        after,
        Box(0.0, 0.0, 0.4, 0.4),
        Box(1.0, 1.0, 2.0, 2.0),
        [],
        [],
        [[0, 0]],
        10.0,
        15.0,
        60.0,
        Autonomy(full_cycles=1),
    )
    fields = rep.summary_fields()
    assert fields["berm_volume_cm3"] == pytest.approx(2500.0)
    assert fields["cycles_completed"] == 1
    assert set(fields) == {"berm_volume_cm3", "contacts", "cycles_completed", "energy_wh", "score"}
    assert fields["score"]["autonomy"] == 450.0


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_have_zones_and_seeded_obstacles(name: str) -> None:
    p = preset(name)
    a = make_site(p, 3)
    b = make_site(p, 3)
    c = make_site(p, 4)
    assert a == b and a != c
    assert len(a.boulders) >= 3 and len(a.craters) >= 3
    for o in (*a.boulders, *a.craters):
        assert p.obstacle_zone.contains(o.x_m, o.y_m)
        assert not p.start_zone.contains(o.x_m, o.y_m)
    if name in ("ucf", "ksc"):
        assert all(0.30 <= bd.diameter_m <= 0.40 for bd in a.boulders)
        assert all(0.40 <= cr.diameter_m <= 0.50 for cr in a.craters)
        bar = p.fiducial_bar
        assert bar is not None and bar.length_m == pytest.approx(1.5) and bar.height_m == pytest.approx(0.4)
        assert p.start_zone.contains(bar.x0_m, bar.y0_m) and p.start_zone.contains(bar.x1_m, bar.y1_m)
    else:
        assert p.size_m[0] >= 40 and p.size_m[1] >= 40 and p.slope_deg > 0
        assert p.lighting.sun_elevation_deg < 15


def test_unknown_preset() -> None:
    with pytest.raises(ValueError, match="unknown site preset"):
        preset("mars")
