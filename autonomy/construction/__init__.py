"""Construction planning: structure specs to dig-haul-dump cycles (pure, deterministic)."""
