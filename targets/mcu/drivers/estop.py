"""E-stop input (MicroPython subset): a normally closed button pulled up, so a broken wire reads as pressed."""


class EstopInput:
    def __init__(self, pin, active_level=1):
        self.pin = pin
        self.active_level = active_level

    def pressed(self):
        return self.pin.value() == self.active_level
