"""Board wiring only (Raspberry Pi Pico / RP2040 pin map); the logic lives in app.py."""

import time

import app
import machine
from drivers.estop import EstopInput
from drivers.motors import Motor, Quadrature
from drivers.tool import ToolActuator

PWM_HZ = 20000
WDT_TIMEOUT_MS = 500


def _motor(pwm_pin, dir_pin, reverse=False):
    pwm = machine.PWM(machine.Pin(pwm_pin))
    pwm.freq(PWM_HZ)
    return Motor(pwm, machine.Pin(dir_pin, machine.Pin.OUT), reverse)


def _encoder(a, b, reverse=False):
    pa = machine.Pin(a, machine.Pin.IN, machine.Pin.PULL_UP)
    pb = machine.Pin(b, machine.Pin.IN, machine.Pin.PULL_UP)
    q = Quadrature(pa, pb, reverse)
    trig = machine.Pin.IRQ_RISING | machine.Pin.IRQ_FALLING
    pa.irq(q.irq, trig)
    pb.irq(q.irq, trig)
    return q


def build():
    wdt_reset = machine.reset_cause() == machine.WDT_RESET
    uart = machine.UART(0, baudrate=1000000, tx=machine.Pin(0), rx=machine.Pin(1), rxbuf=512)
    left = (_motor(2, 3), _motor(4, 5))
    right = (_motor(6, 7, True), _motor(8, 9, True))
    encoders = (_encoder(10, 11), _encoder(12, 13, True), _encoder(14, 15), _encoder(16, 17, True))
    tool = ToolActuator(_motor(18, 19), machine.ADC(26), machine.ADC(27))
    estop = EstopInput(machine.Pin(20, machine.Pin.IN, machine.Pin.PULL_UP), active_level=1)
    wdt = machine.WDT(timeout=WDT_TIMEOUT_MS)
    return app.Firmware(time, uart, wdt, left, right, encoders, tool, estop, wdt_reset)


if __name__ == "__main__":
    build().run(time.sleep_ms)
