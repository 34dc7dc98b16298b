"""The navigation bench runs end to end on small grids and returns a JSON-able dict (no timing checks)."""

from __future__ import annotations

import json

from targets.bench_navigation import run_navigation_bench


def test_navigation_bench_small() -> None:
    out = run_navigation_bench(seed=1, repeats=2, python_repeats=1, local_n=60, global_n=120, oriented_fields=2)
    json.dumps(out)
    for key in ("local", "global", "salt"):
        suite = out[key]
        assert suite["cost_equal_to_baseline"] is True
        assert "p50_ms" in suite["regolith_plan"] and "p50_ms" in suite["python"]
        assert "p50_ms" in suite["pyastar2d"] or "skipped" in suite["pyastar2d"]
    assert out["replan"]["incremental"]["valid"] is True
    ori = out["oriented"]
    assert ori["grid"] == "96x166" and ori["headings"] == 64  # the UCF arena at 5 cm
    assert "p50_ms" in ori["oriented_plan"] and "p50_ms" in ori["collision_layers"]
    assert ori["solved_oriented"].endswith("/4")
