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


def test_fault_schedule_parses_typed_specs() -> None:
    text = GOOD + (
        "faults:\n"
        "  - {kind: imu_bias_step, start_s: 30, gyro_bias_radps: [0, 0, 0.01]}\n"
        "  - {kind: sensor_dropout, sensor: camera, start_s: 10, end_s: 15}\n"
        "  - {kind: low_friction_patch, box_m: [2, -1, 4, 1], friction: 0.1}\n"
    )
    faults = parse_mission(text, "f.yaml").faults
    assert [f.kind for f in faults] == ["imu_bias_step", "sensor_dropout", "low_friction_patch"]
    assert faults[0].gyro_bias_radps == (0.0, 0.0, 0.01) and math.isinf(faults[0].end_s)
    assert (faults[1].sensor, faults[1].start_s, faults[1].end_s) == ("camera", 10.0, 15.0)
    assert faults[2].box_m == (2.0, -1.0, 4.0, 1.0) and faults[2].friction == 0.1


def test_fault_schedule_errors_name_line_and_field() -> None:
    lines = GOOD.count("\n")
    text = GOOD + (
        "faults:\n"
        "  - {kind: sensor_dropout, sensor: lidar, start_s: 10, end_s: 5}\n"
        "  - {kind: command_delay}\n"
        "  - {kind: encoder_loss, friction: 0.2}\n"
        "  - {kind: warp}\n"
        "  - {kind: command_loss, rover: nobody}\n"
    )
    probs = _problems(text)
    assert f"m.yaml:{lines + 2}: faults[0].end_s: must be after start_s (10), got 5" in probs
    assert any(p.startswith(f"m.yaml:{lines + 2}: faults[0].sensor: unknown sensor 'lidar'") for p in probs)
    assert f"m.yaml:{lines + 3}: faults[1].delay_s: missing (required by command_delay faults)" in probs
    assert any(p.startswith(f"m.yaml:{lines + 4}: faults[2].friction: not used by encoder_loss") for p in probs)
    assert any(p.startswith(f"m.yaml:{lines + 5}: faults[3].kind: unknown fault kind 'warp'") for p in probs)
    assert f"m.yaml:{lines + 6}: faults[4].rover: no rover 'nobody' in this mission" in probs
