"""``rover sim judge``, ``rover sim drive`` and ``rover sim dig-demo``: entry points for ``targets/cli.py`` to
wire with ``register(sim_subparsers)``. Each handler returns an exit code (0 ok, 1 failed, 2 bad input)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sim.sites import PRESETS

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

# PyBullet key codes (pybullet.B3G_*) and key states (KEY_IS_DOWN, KEY_WAS_TRIGGERED)
KEY_LEFT, KEY_RIGHT, KEY_UP, KEY_DOWN = 65295, 65296, 65297, 65298
KEY_IS_DOWN, KEY_WAS_TRIGGERED = 1, 2
KEY_DIG, KEY_CARRY, KEY_DUMP, KEY_QUIT, KEY_SLOW = ord("n"), ord("m"), ord("b"), ord("x"), ord("v")

DRIVE_HELP = (
    "arrows: drive (up/down) and turn (left/right); v (hold): slow; n: lower the bucket to dig; "
    "m: raise it to carry; b: tip it back to dump; x: quit"
)


@dataclass(frozen=True, slots=True)
class DriveIntent:
    linear_x_mps: float
    angular_z_radps: float
    tool_rad: float
    quit: bool = False


def keys_to_intent(
    keys: Mapping[int, int],
    tool_rad: float,
    max_speed_mps: float = 0.4,
    max_turn_radps: float = 0.6,
    dig_rad: float = 0.8,
    dump_rad: float = -0.7,
) -> DriveIntent:
    """Map PyBullet's ``getKeyboardEvents()`` (key code -> state bits) to a drive and tool command.
    Arrows act while held; the tool keys set the bucket's target position (it stays until changed)."""

    def down(k: int) -> bool:
        return bool(keys.get(k, 0) & (KEY_IS_DOWN | KEY_WAS_TRIGGERED))

    scale = 0.3 if down(KEY_SLOW) else 1.0
    v = (float(down(KEY_UP)) - float(down(KEY_DOWN))) * max_speed_mps * scale
    w = (float(down(KEY_LEFT)) - float(down(KEY_RIGHT))) * max_turn_radps * scale
    tool = tool_rad
    if down(KEY_DIG):
        tool = dig_rad
    elif down(KEY_CARRY):
        tool = 0.0
    elif down(KEY_DUMP):
        tool = dump_rad
    return DriveIntent(v, w, tool, quit=down(KEY_QUIT))


def _cmd_drive(args: argparse.Namespace) -> int:
    from autonomy.msgs import DriveCommand, Pose2D, ToolCommand
    from sim.sites import make_site, preset
    from sim.world import World

    if not args.gui:
        print("rover sim drive needs --gui (a window to take the keyboard)", file=sys.stderr)
        return EXIT_BAD_INPUT
    site = make_site(preset(args.site), args.seed)
    start = site.preset.start_zone.center_xy
    print(DRIVE_HELP, file=sys.stderr)
    with World(args.seed, (), site=site, gui=True) as world:
        rover = world.add_rover("r1", Pose2D(start[0], start[1], 0.0))
        tool = 0.0
        while not world.closed:
            try:
                keys = world.client.getKeyboardEvents()
            except Exception:  # the window was closed
                break
            intent = keys_to_intent(keys, tool)
            if intent.quit:
                break
            tool = intent.tool_rad
            rover.drive.command(DriveCommand(world.time_s, intent.linear_x_mps, intent.angular_z_radps))
            rover.tool.command(ToolCommand(world.time_s, tool))
            world.run_for(0.05)
            if args.max_seconds is not None and world.time_s >= args.max_seconds:
                break
        print(
            json.dumps(
                {
                    "sim_seconds": world.time_s,
                    "soil_dug_m3": rover.soil_dug_m3,
                    "soil_dumped_m3": rover.soil_dumped_m3,
                    "energy_wh": rover.energy_used_wh,
                }
            )
        )
    return EXIT_OK


def _cmd_judge(args: argparse.Namespace) -> int:
    """Judge a run folder holding ``elevation_before.npz``, ``elevation_after.npz`` and ``judge_inputs.json``."""
    from sim.judge import Autonomy, ContactEvent, ElevationScan, judge_run
    from sim.sites import make_site, preset

    run = Path(args.run_dir)
    try:
        before = ElevationScan.load(run / "elevation_before.npz")
        after = ElevationScan.load(run / "elevation_after.npz")
        inputs = json.loads((run / "judge_inputs.json").read_text(encoding="utf-8"))
        site = make_site(preset(str(inputs["site"])), int(inputs["seed"]))
        events = [ContactEvent(**e) for e in inputs.get("contact_events", [])]
        report = judge_run(
            before,
            after,
            site.preset.target_box,
            site.preset.obstacle_zone,
            site.craters,
            events,
            inputs.get("path_xy", []),
            float(inputs["energy_wh"]),
            float(inputs.get("run_minutes", site.preset.run_minutes)),
            float(inputs["robot_mass_kg"]),
            Autonomy(**inputs.get("autonomy", {})),
            bool(inputs.get("autonomy_volume_scaling", False)),
        )
    except (OSError, KeyError, TypeError, ValueError) as exc:
        print(f"{run}: cannot judge: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(report.summary_fields(), indent=2))
    return EXIT_OK


def _cmd_dig_demo(args: argparse.Namespace) -> int:
    """Scripted dig-haul-dump in the UCF arena: writes summary.json, the judge inputs, the before/after
    elevation plot and a rendered scene into ``--out``."""
    from sim.plots import write_scene_png
    from sim.scripted import run_dig_haul_dump

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = run_dig_haul_dump(seed=args.seed, cycles=args.cycles, out_dir=out)
    res.before.save(out / "elevation_before.npz")
    res.after.save(out / "elevation_after.npz")
    if res.scene_bgr is not None:
        write_scene_png(out / "scene.png", res.scene_bgr)
    (out / "judge_inputs.json").write_text(json.dumps(res.judge_inputs, indent=2), encoding="utf-8")
    summary = {
        "mission": "scripted-dig-haul-dump",
        "seed": res.seed,
        "sim_seconds": res.sim_seconds,
        "soil_dug_cm3": res.dug_m3 * 1e6,
        "soil_dumped_in_box_cm3": res.dumped_in_box_m3 * 1e6,
    } | res.report.summary_fields()
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(json.dumps(summary, indent=2))
    moved = res.dumped_in_box_m3 * 1e6
    ok = moved > 0 and math.isclose(res.report.berm_volume_cm3, moved, rel_tol=0.05)
    return EXIT_OK if ok else EXIT_FAILED


def register(sim_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``judge``, ``drive`` and ``dig-demo`` to the ``rover sim`` subcommands."""
    judge = sim_sub.add_parser(
        "judge",
        help="score a run from its before/after elevation scans",
        description="Judge a run folder (elevation_before.npz, elevation_after.npz, judge_inputs.json): berm volume "
        "above grade in the target box, rock contacts and crater crossings in the obstacle zone, cycles, energy "
        "and the Lunabotics score terms; prints JSON.",
    )
    judge.add_argument("run_dir", help="run folder")
    judge.set_defaults(func=_cmd_judge)

    drive = sim_sub.add_parser(
        "drive",
        help="drive a rover by keyboard in the PyBullet window",
        description="Open a site in the PyBullet window and drive the rover and its bucket from the keyboard. "
        + DRIVE_HELP,
    )
    drive.add_argument("--gui", action="store_true", help="open the PyBullet window (required)")
    drive.add_argument("--site", choices=sorted(PRESETS), default="ucf", help="site preset")
    drive.add_argument("--seed", type=int, default=1, help="obstacle seed")
    drive.add_argument("--max-seconds", type=float, default=None, help="stop after this much simulated time")
    drive.set_defaults(func=_cmd_drive)

    demo = sim_sub.add_parser(
        "dig-demo",
        help="scripted dig-haul-dump run in the UCF arena, judged",
        description="Dig in the excavation zone, haul through the obstacle zone, dump into the target box (open "
        "loop, steered on ground truth); write summary.json, judge inputs, scans, elevation plot and scene.",
    )
    demo.add_argument("--out", default="runs/dig-demo", help="output folder")
    demo.add_argument("--seed", type=int, default=None, help="obstacle seed (default: first with a clear lane)")
    demo.add_argument("--cycles", type=int, default=1, help="dig-haul-dump cycles")
    demo.set_defaults(func=_cmd_dig_demo)
