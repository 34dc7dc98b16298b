"""The host side of the MCU serial link. ``hw.link.protocol`` is the single wire-protocol module, written in
the MicroPython subset and copied unchanged into the firmware image by ``targets/mcu/build.py``."""
