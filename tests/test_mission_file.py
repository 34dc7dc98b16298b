"""Mission files: the shipped ones load, and every broken one gets FILE:LINE: field: reason."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

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


# ---- construction missions ------------------------------------------------------------------------------

ARENA = """\
mission: berm
mode: lunabotics
site:
  preset: ucf
rovers:
  - id: r1
    start: {x_m: 1.0, y_m: 1.0, yaw_rad: 0.0}
structures:
  - {kind: berm, box_m: [6.15, 1.835, 7.65, 2.735], height_m: 0.2, crest_width_m: 0.2, side_slope_deg: 35}
"""


def test_site_zones_match_the_sim_presets() -> None:
    """autonomy keeps its own copy of the zone numbers (autonomy never imports sim): both must agree."""
    from autonomy.mission.site_zones import PRESET_ZONES
    from sim.sites import PRESETS

    assert set(PRESET_ZONES) == set(PRESETS)
    for name, z in PRESET_ZONES.items():
        p = PRESETS[name]
        assert z.size_m == p.size_m
        for attr in ("start_zone", "excavation_zone", "obstacle_zone", "construction_zone", "target_box"):
            a, b = getattr(z, attr), getattr(p, attr)
            assert (a.x_min_m, a.y_min_m, a.x_max_m, a.y_max_m) == (b.x_min_m, b.y_min_m, b.x_max_m, b.y_max_m), attr
        assert z.berm_size_m == p.berm_size_m and z.run_minutes == p.run_minutes
        assert (z.repose_deg, z.cell_m, z.soil_depth_m) == (p.repose_deg, p.cell_m, p.soil_depth_m)
        assert p.fiducial_bar is not None and z.fiducial_bar is not None
        fb, pb = z.fiducial_bar, p.fiducial_bar
        assert (fb.x0_m, fb.y0_m, fb.x1_m, fb.y1_m, fb.height_m) == (pb.x0_m, pb.y0_m, pb.x1_m, pb.y1_m, pb.height_m)


@pytest.mark.parametrize("name", ["lunabotics-ucf", "lunabotics-ksc", "open-site"])
def test_shipped_construction_missions_load(repo_root: Path, name: str) -> None:
    m = load_mission(repo_root / "missions" / f"{name}.yaml")
    assert m.structures and not m.waypoints and m.zones is not None
    assert m.path_length_m() == 0.0  # `rover mission check` prints it
    for b in m.site.beacons:  # default fiducials: on the preset's bar, in the start zone
        assert m.zones.start_zone.contains(b.x_m, b.y_m, margin_m=-0.05)
    for s in m.structures:
        assert s.footprint().inside(m.zones.construction_zone)
    if name.startswith("lunabotics"):
        assert m.mode == "lunabotics" and len(m.rovers) == 1
        assert m.limits.time_s == m.zones.run_minutes * 60
        assert not set(m.rovers[0].sensors) & {"gps", "compass"}
    else:
        assert len(m.rovers) == 2 and {s.kind for s in m.structures} == {"berm", "pad"}


def test_arena_defaults_and_zone_overrides() -> None:
    m = parse_mission(ARENA, "a.yaml")
    assert m.site.preset == "ucf" and m.site.size_m == (8.10, 4.57) and len(m.site.beacons) == 3
    assert m.limits.time_s == 900.0 and m.limits.energy_reserve_wh == 20.0 and m.limits.max_cut_depth_m == 0.2
    berm = m.structures[0]
    assert berm.structure_id == "berm1" and berm.kind == "berm"
    # box form -> crest line on the long axis, inset so the base stays in the box
    assert berm.footprint().inside(m.zones.target_box) if m.zones else False
    text = ARENA.replace(
        "  preset: ucf\n",
        "  preset: ucf\n  zones:\n    target: [6.0, 1.8, 7.7, 2.8]\n    keep_out: [[3, 0, 3.5, 0.5]]\n",
    )
    z = parse_mission(text, "a.yaml").zones
    assert z is not None and z.target_box.as_list() == [6.0, 1.8, 7.7, 2.8] and len(z.keep_out) == 1
    assert z.start_zone.as_list() == [0.0, 0.0, 2.5, 2.0]  # the rest stays the preset's


def test_waypoints_optional_only_with_structures() -> None:
    probs = _problems(ARENA.replace("structures:", "nothing:").split("nothing:")[0])
    assert "m.yaml:1: waypoints: missing (required unless structures are given)" in probs


def test_lunabotics_rule_violations_name_their_line() -> None:
    text = (
        ARENA.replace("    start: {x_m: 1.0", "    sensors: [wheels, imu, gps]\n    start: {x_m: 1.0").replace(
            "  preset: ucf\n", "  preset: ucf\n  beacons:\n    - {id: 4, x_m: 7.0, y_m: 0.0, z_m: 0.4, size_m: 0.2}\n"
        )
        + "limits: {time_s: 1200}\ntelemetry:\n  streams: [battery, camera]\n"
    )
    probs = _problems(text)
    assert any(p.startswith("m.yaml:6: site.beacons[0]: fiducial 4 at (7, 0) is outside the start zone") for p in probs)
    assert any(p.startswith("m.yaml:9: rovers[0].sensors[2]: gps is banned in lunabotics mode") for p in probs)
    assert "m.yaml:13: limits.time_s: 1200 s is longer than a ucf run (15 min)" in probs
    assert any(p.startswith("m.yaml:15: telemetry.streams[1]: camera is not allowed in lunabotics mode") for p in probs)
    assert len(probs) == 4
    # the same file in free mode is fine
    parse_mission(text.replace("mode: lunabotics", "mode: free"), "m.yaml")


def test_lunabotics_needs_an_arena_and_a_start_in_the_start_zone() -> None:
    probs = _problems(
        ARENA.replace("preset: ucf", "preset: open").replace(
            "berm, box_m: [6.15, 1.835, 7.65, 2.735]", "berm, box_m: [27, 19, 29, 21]"
        )
    )
    assert any(p.startswith("m.yaml:2: mode: lunabotics mode needs the ucf or ksc arena") for p in probs)
    probs = _problems(ARENA.replace("x_m: 1.0, y_m: 1.0", "x_m: 4.0, y_m: 1.0"))
    assert any(p.startswith("m.yaml:7: rovers[0].start: (4, 1) is outside the start zone") for p in probs)


def test_structure_errors() -> None:
    line = ARENA.count("\n")  # the berm is on the last line
    steep = _problems(ARENA.replace("side_slope_deg: 35", "side_slope_deg: 45"))
    assert steep == [
        f"m.yaml:{line}: structures[0].side_slope_deg: 45 deg is steeper than the site's angle of repose (37 deg): "
        "the sides would slide"
    ]
    wide = _problems(ARENA.replace("height_m: 0.2", "height_m: 0.4"))
    assert len(wide) == 1 and wide[0].startswith(f"m.yaml:{line}: structures[0].box_m: the berm's base")
    both = _problems(ARENA.replace("height_m: 0.2", "polyline_m: [[6.5, 2.2], [7.3, 2.2]], height_m: 0.2"))
    assert both == [f"m.yaml:{line}: structures[0]: a berm needs exactly one of box_m or polyline_m"]
    outside = _problems(ARENA.replace("[6.15, 1.835, 7.65, 2.735]", "[3.0, 1.835, 4.5, 2.735]"))
    assert len(outside) == 1 and "is not inside the construction zone" in outside[0]
    pad = _problems(
        ARENA.replace("{kind: berm", "{kind: pad").replace(
            ", height_m: 0.2, crest_width_m: 0.2, side_slope_deg: 35", ""
        )
    )
    assert pad == [f"m.yaml:{line}: structures[0].grade_m: missing (required: the pad's elevation, map z)"]
    kind = _problems(ARENA.replace("kind: berm", "kind: tower"))
    assert kind == [f"m.yaml:{line}: structures[0].kind: unknown structure kind 'tower' (known: berm, pad)"]
    plain = _problems(GOOD + "structures:\n  - {kind: pad, box_m: [1, 1, 2, 2], grade_m: 0}\n")
    assert any("structures: need a site with zones" in p for p in plain)


def test_rover_model_and_sensors() -> None:
    text = ARENA.replace(
        "    start: {x_m: 1.0, y_m: 1.0, yaw_rad: 0.0}\n",
        "    start: {x_m: 1.0, y_m: 1.0, yaw_rad: 0.0}\n    model: {bucket_m3: 0.02, haul_speed_mps: 0.4}\n",
    )
    r = parse_mission(text, "m.yaml").rovers[0]
    assert r.model.bucket_m3 == 0.02 and r.model.haul_speed_mps == 0.4 and r.model.dump_reach_m == 1.0
    probs = _problems(
        text.replace("haul_speed_mps: 0.4", "haul_speed_mps: 9, warp: 1").replace("mode: lunabotics\n", "")
    )
    assert any(p.startswith("m.yaml:7: rovers[0].model.warp: unknown key") for p in probs)
    assert any(p.startswith("m.yaml:7: rovers[0].model.haul_speed_mps: must be within") for p in probs)
    heavy = _problems(text.replace("bucket_m3: 0.02", "mass_kg: 95"))
    assert heavy == ["m.yaml:8: rovers[0].model.mass_kg: 95 kg is over the 80 kg limit"]


# ---- JSON Schema ------------------------------------------------------------------------------------------


def _schema_errors(value: object, schema: dict[str, object], path: str = "") -> list[str]:
    """A small JSON Schema (2020-12) checker for the keywords missions/mission.schema.json uses (jsonschema
    is not a dependency)."""
    errs: list[str] = []
    types = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float)}
    t = schema.get("type")
    if isinstance(t, str):
        ok = isinstance(value, types[t]) and not isinstance(value, bool)  # type: ignore[arg-type]
        if not ok:
            return [f"{path}: expected {t}"]
    if "enum" in schema and value not in schema["enum"]:  # type: ignore[operator]
        errs.append(f"{path}: {value!r} not in enum")
    if "const" in schema and value != schema["const"]:
        errs.append(f"{path}: {value!r} != const")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:  # type: ignore[operator]
            errs.append(f"{path}: below minimum")
        if "maximum" in schema and value > schema["maximum"]:  # type: ignore[operator]
            errs.append(f"{path}: above maximum")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:  # type: ignore[operator]
            errs.append(f"{path}: not above exclusiveMinimum")
    if isinstance(value, str) and len(value) < schema.get("minLength", 0):  # type: ignore[operator]
        errs.append(f"{path}: too short")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 10**9):  # type: ignore[operator]
            errs.append(f"{path}: wrong number of items")
        if schema.get("uniqueItems") and len({json.dumps(v) for v in value}) != len(value):
            errs.append(f"{path}: items not unique")
        if isinstance(schema.get("items"), dict):
            for i, v in enumerate(value):
                errs += _schema_errors(v, schema["items"], f"{path}[{i}]")  # type: ignore[arg-type]
    if isinstance(value, dict):
        props: dict[str, dict[str, object]] = schema.get("properties", {})  # type: ignore[assignment]
        errs += [f"{path}.{k}: required" for k in schema.get("required", []) if k not in value]  # type: ignore[attr-defined]
        for k, v in value.items():
            if k in props:
                errs += _schema_errors(v, props[k], f"{path}.{k}")
            elif schema.get("additionalProperties") is False:
                errs.append(f"{path}.{k}: additional property")
    for sub in schema.get("allOf", []):  # type: ignore[attr-defined]
        errs += _schema_errors(value, sub, path)
    if "anyOf" in schema and all(_schema_errors(value, s, path) for s in schema["anyOf"]):  # type: ignore[attr-defined]
        errs.append(f"{path}: matches none of anyOf")
    if "oneOf" in schema and sum(not _schema_errors(value, s, path) for s in schema["oneOf"]) != 1:  # type: ignore[attr-defined]
        errs.append(f"{path}: does not match exactly one of oneOf")
    return errs


def _schema(repo_root: Path) -> dict[str, object]:
    return json.loads((repo_root / "missions" / "mission.schema.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_schema_is_json_and_matches_the_readers_keys(repo_root: Path) -> None:
    import autonomy.mission.mission_file as mf

    s = _schema(repo_root)
    props = s["properties"]
    assert isinstance(props, dict)
    assert set(props) == set(mf.TOP_KEYS)
    assert set(props["site"]["properties"]) == set(mf.SITE_KEYS_ARENA)
    assert set(props["site"]["properties"]["zones"]["properties"]) == set(mf.ZONE_KEYS)
    assert set(props["rovers"]["items"]["properties"]) == set(mf.ROVER_KEYS)
    assert set(props["rovers"]["items"]["properties"]["model"]["properties"]) == set(mf.MODEL_KEYS)
    assert set(props["limits"]["properties"]) == set(mf.LIMIT_KEYS)
    assert set(props["telemetry"]["properties"]) == set(mf.TELEMETRY_KEYS)
    berm, pad = props["structures"]["items"]["oneOf"]
    assert set(berm["properties"]) == set(mf.BERM_KEYS) and set(pad["properties"]) == set(mf.PAD_KEYS)
    assert props["site"]["properties"]["preset"]["enum"] == list(mf.SITE_PRESETS)


def test_every_shipped_mission_validates_against_the_schema(repo_root: Path) -> None:
    s = _schema(repo_root)
    files = sorted((repo_root / "missions").glob("*.yaml"))
    assert len(files) >= 4
    for f in files:
        data = yaml.safe_load(f.read_text(encoding="utf-8"))
        assert _schema_errors(data, s) == [], f.name
        load_mission(f)  # and the reader agrees
    bad = yaml.safe_load(ARENA.replace("kind: berm", "kind: tower").replace("mode: lunabotics", "mode: race"))
    errs = _schema_errors(bad, s)
    assert any(e.startswith(".mode") for e in errs) and any(e.startswith(".structures[0]") for e in errs)
