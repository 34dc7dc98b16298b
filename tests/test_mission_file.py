"""Mission files: the shipped ones load, and every broken one gets FILE:LINE: field: reason."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from autonomy.mission.mission_file import MissionError, load_mission, parse_mission

GOOD = """\
mission: tiny
site:
  preset: uneven-plain
  size_m: [20.0, 20.0]
  beacons:
    - {id: 3, x_m: 5.0, y_m: 0.0, z_m: 0.5, size_m: 0.2, facing_yaw_rad: 3.14159}
rovers:
  - id: r1
    start: {x_m: 0.0, y_m: 0.0, yaw_rad: 0.0}
waypoints:
  - {x_m: 2.0, y_m: 0.0}
  - {x_m: 2.0, y_m: 2.0, tolerance_m: 0.3}
"""


def test_shipped_waypoint_mission_loads(repo_root: Path) -> None:
    m = load_mission(repo_root / "missions" / "waypoints.yaml")
    assert m.name == "waypoints"
    assert len(m.waypoints) >= 4
    assert m.path_length_m() >= 10.0
    # the loop closes: the last waypoint is the start
    assert math.dist((m.waypoints[-1].x_m, m.waypoints[-1].y_m), (m.rovers[0].start.x_m, m.rovers[0].start.y_m)) < 0.5
    assert len({b.tag_id for b in m.site.beacons}) == len(m.site.beacons)


def test_good_text_parses_with_defaults() -> None:
    m = parse_mission(GOOD, "good.yaml")
    assert m.seed == 1
    assert m.waypoints[0].tolerance_m == 0.25
    assert m.waypoints[1].tolerance_m == 0.3
    assert m.site.beacons[0].tag_id == 3
    assert m.limits.time_s == 600.0


def _problems(text: str) -> list[str]:
    with pytest.raises(MissionError) as info:
        parse_mission(text, "m.yaml")
    return [str(p) for p in info.value.problems]


def test_wrong_type_reports_file_line_field() -> None:
    probs = _problems(GOOD.replace("x_m: 2.0, y_m: 2.0", "x_m: two, y_m: 2.0"))
    assert probs == ["m.yaml:12: waypoints[1].x_m: expected a number, got 'two'"]


def test_unknown_and_missing_keys_all_reported() -> None:
    text = GOOD.replace("  preset: uneven-plain\n", "  presett: uneven-plain\n").replace("rovers:", "rover:")
    probs = _problems(text)
    assert "m.yaml:3: site.presett: unknown key (allowed: preset, beacons, size_m)" in probs
    assert "m.yaml:3: site.preset: missing (required)" in probs
    assert any(p.startswith("m.yaml:7: rover: unknown key") for p in probs)
    assert any(p.startswith("m.yaml:1: rovers: missing") for p in probs)


def test_bad_values_reported() -> None:
    text = GOOD.replace("id: 3,", "id: 999,").replace("tolerance_m: 0.3", "tolerance_m: -1")
    probs = _problems(text)
    assert "m.yaml:6: site.beacons[0].id: AprilTag 36h11 ids are 0..586, got 999" in probs
    assert any(p.startswith("m.yaml:12: waypoints[1].tolerance_m: must be within") for p in probs)


def test_waypoint_outside_site() -> None:
    probs = _problems(GOOD.replace("x_m: 2.0, y_m: 0.0", "x_m: 50.0, y_m: 0.0"))
    assert probs == ["m.yaml:11: waypoints[0]: (50, 0) is outside the site or within 1 m of its edge"]


def test_duplicate_ids() -> None:
    text = GOOD.replace(
        "    - {id: 3, x_m: 5.0",
        "    - {id: 3, x_m: 6.0, y_m: 0.0, z_m: 0.5, size_m: 0.2}\n    - {id: 3, x_m: 5.0",
    )
    assert _problems(text) == ["m.yaml:7: site.beacons[1].id: tag id 3 is used twice"]


def test_yaml_syntax_error_has_line() -> None:
    probs = _problems(GOOD.replace("waypoints:\n", "waypoints:\n  - [unclosed\n"))
    assert probs == ["m.yaml:12: (yaml): expected ',' or ']', but got '{'"]


def test_not_code_never_executed() -> None:
    probs = _problems(GOOD.replace("mission: tiny", "mission: !!python/object/apply:os.system ['true']"))
    assert probs == [
        "m.yaml:1: (yaml): tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed: "
        "mission files are data, never code"
    ]


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(MissionError) as info:
        load_mission(tmp_path / "nope.yaml")
    assert str(info.value) == f"{tmp_path / 'nope.yaml'}:1: (file): no such file"
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(MissionError, match="empty mission file"):
        load_mission(empty)
