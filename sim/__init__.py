"""PyBullet simulation backend: implements hw.interfaces for simulated rovers. Needs the `sim` extra."""
