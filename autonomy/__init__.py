"""Regolith's pure, deterministic autonomy core: no simulator, hardware, board wiring or wall clock."""
