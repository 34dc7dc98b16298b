"""Board wiring, entry points (the `rover` CLI) and MCU firmware."""
