"""CPython stand-in for MicroPython's ``machine`` module: enough of Pin, PWM, ADC, UART and WDT for
``targets/mcu/main.py`` to wire a board in tests. Behaviour is recorded, nothing touches hardware."""

PWRON_RESET = 1
WDT_RESET = 3
_reset_cause = PWRON_RESET


def reset_cause():
    return _reset_cause


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    IRQ_RISING = 4
    IRQ_FALLING = 8

    def __init__(self, pin_id, mode=-1, pull=-1):
        self.id = pin_id
        self.mode = mode
        self.pull = pull
        self.level = 1 if pull == Pin.PULL_UP else 0
        self.handler = None

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = 1 if v else 0
        return None

    def irq(self, handler=None, trigger=0):
        self.handler = handler


class PWM:
    def __init__(self, pin):
        self.pin = pin
        self.hz = 0
        self.duty = 0

    def freq(self, hz):
        self.hz = hz

    def duty_u16(self, d=None):
        if d is None:
            return self.duty
        self.duty = d
        return None


class ADC:
    def __init__(self, ch):
        self.ch = ch
        self.raw = 32768

    def read_u16(self):
        return self.raw


class UART:
    def __init__(self, n, baudrate=115200, tx=None, rx=None, rxbuf=256):
        self.n = n
        self.baudrate = baudrate
        self.rxq = bytearray()
        self.txq = bytearray()

    def any(self):
        return len(self.rxq)

    def readinto(self, buf):
        n = min(len(buf), len(self.rxq))
        buf[:n] = self.rxq[:n]
        del self.rxq[:n]
        return n or None

    def write(self, data):
        self.txq += bytes(data)
        return len(data)


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.feeds = 0

    def feed(self):
        self.feeds += 1
