"""``rover mission plan MISSION``: the dry run of a construction mission. Prints the planned dig-haul-dump
cycles, the predicted berm volume and score and the ideal cycles per hour, before anything drives.

Wiring (targets/cli.py, after the ``check`` sub-command): ``cli_mission.register_plan(m_sub)``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from autonomy.construction.planner import Plan, plan_mission
from autonomy.mission.mission_file import Mission
from targets.cli_common import EXIT_BAD_INPUT, EXIT_OK, load_mission_or_report, require_construction


def format_plan(mission: Mission, plan: Plan, max_rows: int | None = None) -> str:
    """The plan as a text table and summary lines."""
    out: list[str] = []
    kinds = ", ".join(f"{s.structure_id} ({s.kind})" for s in mission.structures)
    out.append(
        f"mission {mission.name!r} ({mission.mode} mode, site {mission.site.preset}): {len(mission.rovers)} "
        f"rover(s); structures: {kinds}"
    )
    head = (
        f"{'#':>4} {'rover':<8} {'structure':<12} {'layer':>5} {'dig at (x, y) m':>16} {'dump from (x, y) m':>19} "
        f"{'pile (x, y) m':>14} {'vol L':>6} {'appr m':>6} {'haul m':>6} {'start s':>7} {'dur s':>6} {'Wh':>5}"
    )
    out.append(head)
    out.append("-" * len(head))
    rows = plan.cycles if max_rows is None else plan.cycles[:max_rows]
    for c in rows:
        out.append(
            f"{c.index:>4} {c.rover_id:<8} {c.structure_id:<12.12} {c.layer:>5} "
            f"{f'({c.dig_start.x_m:.2f}, {c.dig_start.y_m:.2f})':>16} "
            f"{f'({c.dump_pose.x_m:.2f}, {c.dump_pose.y_m:.2f})':>19} "
            f"{f'({c.pile_xy[0]:.2f}, {c.pile_xy[1]:.2f})':>14} {c.placed_m3 * 1e3:>6.1f} {c.approach_m:>6.2f} "
            f"{c.haul_m:>6.2f} {c.start_s:>7.1f} {c.duration_s:>6.1f} {c.energy_wh:>5.2f}"
        )
    if len(rows) < len(plan.cycles):
        out.append(f"     ... {len(plan.cycles) - len(rows)} more cycles")
    for s in mission.structures:
        done = sum(c.placed_m3 for c in plan.cycles if c.structure_id == s.structure_id)
        n = sum(1 for c in plan.cycles if c.structure_id == s.structure_id)
        need = plan.structure_fill_m3.get(s.structure_id, 0.0)
        out.append(f"{s.structure_id}: fill {need:.4f} m3, {n} cycles place {done:.4f} m3")
    out.append(
        f"total: fill {plan.fill_m3:.4f} m3 (cut {plan.cut_m3:.4f} m3), planned {plan.planned_m3:.4f} m3 in "
        f"{len(plan.cycles)} cycles (overflow {plan.overflow_m3:.4f} m3), remaining {plan.remaining_m3:.4f} m3"
    )
    sc = plan.score
    out.append(
        f"predicted berm volume in the target box: {plan.predicted_box_cm3:,.0f} cm3; energy {plan.energy_wh:.1f} Wh "
        f"over {plan.run_minutes:g} min"
    )
    out.append(
        f"predicted score: productivity by mass {sc.productivity_mass:.1f} + by energy {sc.productivity_energy:.1f} "
        f"+ autonomy {sc.autonomy:.0f} (x{sc.autonomy_volume_factor:.2f}) = {sc.total:.1f} (no penalties)"
    )
    stops = ", ".join(f"{rid}: {why}" for rid, why in plan.stop_reasons.items())
    out.append(f"ideal bound: {plan.ideal_cycles_per_hour:.1f} cycles/hour; stopped: {stops}")
    return "\n".join(out)


def _cmd_mission_plan(args: argparse.Namespace) -> int:
    mission = load_mission_or_report(args.mission)
    if mission is None:
        return EXIT_BAD_INPUT
    if not require_construction(mission, args.mission, "rover mission plan"):
        return EXIT_BAD_INPUT
    plan = plan_mission(mission)
    print(format_plan(mission, plan, args.max_rows))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(plan.to_dict(), indent=1) + "\n", encoding="utf-8")
    return EXIT_OK


def register_plan(mission_subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``plan`` to the ``rover mission`` sub-commands."""
    p = mission_subparsers.add_parser(
        "plan",
        help="dry run: print the planned dig-haul-dump cycles and the predicted volume and score",
        description="Plan a construction mission without driving: the ordered dig-haul-dump cycles (where to dig, "
        "where to dump, layer, distances, durations, energy), the predicted berm volume in the target box and "
        "Lunabotics score, and the ideal cycles per hour. Exit 2 on a bad mission file.",
    )
    p.add_argument("mission", help="mission YAML file with structures, e.g. missions/lunabotics-ucf.yaml")
    p.add_argument("--json", help="also write the plan as JSON to this file")
    p.add_argument("--max-rows", type=int, default=None, help="print at most this many cycles")
    p.set_defaults(func=_cmd_mission_plan)
