"""Motor PWM and quadrature encoder drivers (MicroPython subset). Peripherals are passed in."""

DUTY_MAX = 1000  # signed duty command range: -1000..1000 (per mille)


class Motor:
    """One H-bridge channel: a PWM pin (``duty_u16``) and a direction pin (``value``)."""

    def __init__(self, pwm, dir_pin, reverse=False):
        self.pwm = pwm
        self.dir_pin = dir_pin
        self.reverse = reverse
        self.duty = 0
        self.pwm.duty_u16(0)

    def set(self, duty):
        """Signed duty in per mille, clamped to +-DUTY_MAX."""
        if duty > DUTY_MAX:
            duty = DUTY_MAX
        elif duty < -DUTY_MAX:
            duty = -DUTY_MAX
        self.duty = duty
        forward = duty >= 0
        if self.reverse:
            forward = not forward
        self.dir_pin.value(1 if forward else 0)
        mag = duty if duty >= 0 else -duty
        self.pwm.duty_u16((mag * 65535) // DUTY_MAX)

    def stop(self):
        self.duty = 0
        self.pwm.duty_u16(0)


# Gray-code transition table indexed by (previous AB << 2) | new AB: +1, -1 or 0 (no move / invalid jump).
_QDEC = bytes((1, 2, 0, 1, 0, 1, 1, 2, 2, 1, 1, 0, 1, 0, 2, 1))  # stored as value + 1


class Quadrature:
    """x4 quadrature decoder. ``irq`` is the pin interrupt handler for both channels; it allocates nothing.
    Invalid double transitions (both channels changed) are counted in ``errors``."""

    def __init__(self, pin_a, pin_b, reverse=False):
        self.pin_a = pin_a
        self.pin_b = pin_b
        self.sign = -1 if reverse else 1
        self.count = 0
        self.errors = 0
        self.state = (pin_a.value() << 1) | pin_b.value()

    def irq(self, _pin=None):
        new = (self.pin_a.value() << 1) | self.pin_b.value()
        idx = (self.state << 2) | new
        step = _QDEC[idx] - 1
        if step == 0 and new != self.state:
            self.errors += 1
        self.count += step * self.sign
        self.state = new
