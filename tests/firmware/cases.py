# ruff: noqa: UP031  (%-formatting kept: identical behaviour under MicroPython and CPython)
"""Firmware test cases, written in the MicroPython subset so the same cases run under CPython (with the
stubs in ``stubs/``, via ``tests/test_firmware.py``) and under the real MicroPython runtime (the WebAssembly
port run by node, via ``tests/test_firmware_micropython.py``). Every ``case_*`` function raises
``AssertionError`` (through ``check``) on failure."""

import struct

import app
import protocol as p
from drivers.estop import EstopInput
from drivers.motors import Motor, Quadrature
from drivers.tool import ToolActuator

TICKS_MASK = 0x3FFFFFFF  # MicroPython's ticks_ms wraps at 2**30 (kept in small ints: no heap use)
TICKS_HALF = 0x20000000
TICKS_PERIOD = TICKS_MASK + 1  # a big int on 32-bit MicroPython: used only outside the control loop


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


class FakeClock:
    """``time``'s ticks API (ticks_ms, ticks_diff, ticks_add) with a wrapping, settable counter."""

    def __init__(self, start=0):
        self.t = start % TICKS_PERIOD

    def ticks_ms(self):
        return self.t

    def ticks_add(self, t, d):
        return (t + d) & TICKS_MASK

    def ticks_diff(self, a, b):
        return ((a - b + TICKS_HALF) & TICKS_MASK) - TICKS_HALF

    def advance(self, ms):
        self.t = (self.t + ms) & TICKS_MASK


class FakePin:
    def __init__(self, level=0):
        self.level = level

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = 1 if v else 0
        return None


class FakePWM:
    def __init__(self):
        self.duty = 0

    def duty_u16(self, d):
        self.duty = d


class FakeADC:
    def __init__(self, raw=32768):
        self.raw = raw

    def read_u16(self):
        return self.raw


class FakeUART:
    def __init__(self):
        self.rxq = bytearray()
        self.txq = bytearray()

    def any(self):
        return len(self.rxq)

    def readinto(self, buf):
        n = min(len(buf), len(self.rxq))
        for i in range(n):
            buf[i] = self.rxq[i]
        self.rxq = self.rxq[n:]
        return n or None

    def write(self, data):
        self.txq.extend(bytes(data))
        return len(data)


class FakeWDT:
    """Models ``machine.WDT``: once created it cannot be stopped; ``fired`` tells whether the MCU would
    have been reset at time ``now`` (a gap longer than ``timeout_ms`` between feeds)."""

    def __init__(self, clock, timeout_ms):
        self.clock = clock
        self.timeout_ms = timeout_ms
        self.last = clock.ticks_ms()
        self.feeds = 0
        self.fired = False

    def feed(self):
        self.check()
        self.last = self.clock.ticks_ms()
        self.feeds += 1

    def check(self):
        if self.clock.ticks_diff(self.clock.ticks_ms(), self.last) > self.timeout_ms:
            self.fired = True
        return self.fired


class Rig:
    """The firmware wired to fakes, plus a host-side encoder/parser to talk to it."""

    def __init__(self, start_ms=0):
        self.clock = FakeClock(start_ms)
        self.uart = FakeUART()
        self.wdt = FakeWDT(self.clock, 500)
        self.pwms = [FakePWM() for _ in range(4)]
        self.dirs = [FakePin() for _ in range(4)]
        motors = [Motor(self.pwms[i], self.dirs[i]) for i in range(4)]
        self.enc_pins = [(FakePin(), FakePin()) for _ in range(4)]
        self.encs = [Quadrature(a, b) for a, b in self.enc_pins]
        self.tool_pwm = FakePWM()
        self.tool_pos = FakeADC(32768)
        self.tool_load = FakeADC(0)
        self.tool = ToolActuator(Motor(self.tool_pwm, FakePin()), self.tool_pos, self.tool_load)
        self.button = FakePin(0)
        self.fw = app.Firmware(
            self.clock, self.uart, self.wdt, motors[0:2], motors[2:4], self.encs, self.tool, EstopInput(self.button, 1)
        )
        self.host = p.FrameEncoder()
        self.parser = p.FrameParser()

    def send(self, msg_type, payload=b""):
        k = self.host.encode(msg_type, payload, len(payload))
        self.uart.rxq.extend(self.host.out[:k])

    def drive(self, left, right):
        self.send(p.MSG_DRIVE, struct.pack(p.DRIVE_FMT, left, right))

    def run_ms(self, ms):
        for _ in range(ms // app.LOOP_MS):
            self.clock.advance(app.LOOP_MS)
            self.fw.step()

    def moving(self):
        return any(pwm.duty != 0 for pwm in self.pwms)

    def telemetry(self):
        """The last telemetry frame the firmware sent, unpacked."""
        last = None
        for b in bytes(self.uart.txq):
            if self.parser.push(b) and self.parser.msg_type == p.MSG_TELEMETRY:
                last = struct.unpack(p.TELEMETRY_FMT, bytes(self.parser.payload[: self.parser.length]))
        self.uart.txq = bytearray()
        return last


def case_boots_stopped_and_drives_on_command():
    r = Rig()
    r.run_ms(50)
    check(not r.moving(), "wheels move before any command")
    r.drive(5000, 5000)
    r.run_ms(20)
    check(r.moving(), "wheels do not move on a valid drive command")
    check(r.pwms[0].duty == 32767, "half speed should be half duty, got %d" % r.pwms[0].duty)


def case_watchdog_fed_every_step():
    r = Rig()
    r.run_ms(1000)
    check(r.wdt.feeds == 100, "expected 100 feeds in 1 s at 10 ms, got %d" % r.wdt.feeds)
    check(not r.wdt.fired, "watchdog fired although the loop ran")


def case_watchdog_fires_when_loop_hangs():
    r = Rig()
    r.run_ms(100)
    r.clock.advance(600)  # the loop hangs for 600 ms (no step): longer than the 500 ms timeout
    check(r.wdt.check(), "watchdog did not fire on a 600 ms hang")


def _stop_latency_ms(start_ms):
    r = Rig(start_ms)
    for _ in range(10):
        r.drive(3000, -3000)
        r.run_ms(50)
    check(r.moving(), "not moving under a steady command stream")
    last_cmd = r.fw.last_cmd_ms
    waited = 0
    while r.moving():
        r.clock.advance(app.LOOP_MS)
        r.fw.step()
        waited = r.clock.ticks_diff(r.clock.ticks_ms(), last_cmd)
        check(waited <= 1000, "wheels never stopped")
    return waited


def case_command_expiry_stops_within_250ms():
    waited = _stop_latency_ms(0)
    check(waited <= 250, "wheels stopped %d ms after the last command" % waited)
    check(waited > app.COMMAND_EXPIRY_MS - app.LOOP_MS, "stopped too early: %d ms" % waited)


def case_command_expiry_across_ticks_wraparound():
    waited = _stop_latency_ms(TICKS_PERIOD - 300)
    check(waited <= 250, "across the ticks wrap the wheels stopped after %d ms" % waited)


def case_estop_button_latches_and_needs_two_actions():
    r = Rig()
    r.drive(4000, 4000)
    r.run_ms(20)
    check(r.moving(), "not moving")
    r.button.level = 1
    r.clock.advance(1)
    r.fw.step()
    check(not r.moving(), "e-stop did not stop the wheels in one step")
    r.button.level = 0  # released: still latched
    r.drive(4000, 4000)
    r.run_ms(20)
    check(not r.moving() and r.fw.latched, "release alone resumed")
    r.send(p.MSG_RESUME_CONFIRM)  # confirm without arm: refused
    r.run_ms(20)
    check(r.fw.latched, "confirm without arm resumed")
    r.send(p.MSG_RESUME_ARM)  # one action only
    r.drive(4000, 4000)
    r.run_ms(20)
    check(r.fw.latched and not r.moving(), "arm alone resumed")
    r.send(p.MSG_RESUME_CONFIRM)
    r.run_ms(20)
    check(not r.fw.latched, "arm + confirm did not resume")
    check(not r.moving(), "wheels moved after resume without a fresh command")
    r.drive(4000, 4000)
    r.run_ms(20)
    check(r.moving(), "fresh command after resume did not move")


def case_resume_refused_while_button_pressed():
    r = Rig()
    r.button.level = 1
    r.run_ms(20)
    r.send(p.MSG_RESUME_ARM)
    r.send(p.MSG_RESUME_CONFIRM)
    r.run_ms(20)
    check(r.fw.latched, "resumed while the button is pressed")
    t = r.telemetry()
    check(t[7] & p.FLAG_ESTOP and t[7] & p.FLAG_BUTTON, "telemetry flags do not show the e-stop")


def case_resume_confirm_after_window_refused():
    r = Rig()
    r.send(p.MSG_ESTOP)
    r.run_ms(20)
    check(r.fw.latched, "software e-stop did not latch")
    r.send(p.MSG_RESUME_ARM)
    r.run_ms(20)
    r.run_ms(app.RESUME_WINDOW_MS + 100)
    r.send(p.MSG_RESUME_CONFIRM)
    r.run_ms(20)
    check(r.fw.latched, "a late confirm resumed")


def case_estop_stops_tool():
    r = Rig()
    r.send(p.MSG_TOOL, struct.pack(p.TOOL_FMT, 500))
    r.run_ms(20)
    check(r.tool_pwm.duty != 0, "tool does not move towards its target")
    r.button.level = 1
    r.run_ms(10)
    check(r.tool_pwm.duty == 0, "e-stop did not stop the tool")


def case_tool_load_stall():
    r = Rig()
    r.send(p.MSG_TOOL, struct.pack(p.TOOL_FMT, 800))
    r.run_ms(20)
    r.tool_load.raw = 65535  # overload
    r.run_ms(20)
    check(r.tool_pwm.duty == 0 and r.tool.stalled, "overload did not stall the tool")
    check(r.telemetry()[7] & p.FLAG_STALLED, "stall not in telemetry")
    r.tool_load.raw = 0
    r.send(p.MSG_TOOL, struct.pack(p.TOOL_FMT, -200))
    r.run_ms(20)
    check(not r.tool.stalled and r.tool_pwm.duty != 0, "moving back did not release the stall")


def _turn(a, b, seq, n):
    for _ in range(n):
        for ab in seq:
            a.level = ab >> 1
            b.level = ab & 1
            yield


def case_encoder_counting():
    r = Rig()
    a, b = r.enc_pins[0]
    q = r.encs[0]
    for _ in _turn(a, b, (1, 3, 2, 0), 25):
        q.irq(a)
    check(q.count == 100, "forward: expected 100 counts, got %d" % q.count)
    for _ in _turn(a, b, (2, 3, 1, 0), 10):
        q.irq(a)
    check(q.count == 60, "reverse: expected 60 counts, got %d" % q.count)
    a.level = 1
    b.level = 1  # both channels changed: invalid, counted as an error, no count
    q.irq(a)
    check(q.count == 60 and q.errors == 1, "invalid transition: count %d errors %d" % (q.count, q.errors))
    r.run_ms(40)
    t = r.telemetry()
    check(t[1] == 60, "telemetry encoder count %d != 60" % t[1])


def case_corrupt_and_duplicate_frames_ignored():
    r = Rig()
    k = r.host.encode(p.MSG_DRIVE, struct.pack(p.DRIVE_FMT, 4000, 4000), 4)
    bad = bytearray(r.host.out[:k])
    bad[3] ^= 0x10
    r.uart.rxq.extend(b"\x13\x37garbage\xff\x00")
    r.uart.rxq.extend(bad)
    r.run_ms(20)
    check(not r.moving(), "a corrupted drive frame moved the wheels")
    check(r.fw.parser.err_crc + r.fw.parser.err_cobs >= 1, "corruption not counted")
    seq = r.host.seq
    r.drive(4000, 4000)
    r.run_ms(20)
    check(r.moving(), "no resync after garbage")
    r.run_ms(400)
    check(not r.moving(), "expiry")
    r.host.seq = seq  # replay the same sequence number
    r.drive(4000, 4000)
    r.run_ms(20)
    check(not r.moving(), "a duplicate frame was accepted")
    t = r.telemetry()
    check(t[9] >= 1, "duplicate not counted")


class ReplayUART:
    """A UART that replays a fixed byte string into ``readinto`` and discards writes, allocating nothing."""

    def __init__(self, data):
        self.data = bytes(data)
        self.i = 0
        self.written = 0

    def any(self):
        return len(self.data) - self.i

    def readinto(self, buf):
        n = 0
        while n < len(buf) and self.i < len(self.data):
            buf[n] = self.data[self.i]
            n += 1
            self.i += 1
        return n or None

    def write(self, data):
        self.written += len(data)
        return len(data)


def case_control_loop_does_not_allocate():
    """Under MicroPython, ``heap_lock`` makes any allocation raise MemoryError: 100 loop steps with drive
    frames arriving, the e-stop, expiry and telemetry must not allocate. (The CPython stub's heap_lock is
    a no-op, so there this case checks behaviour only.)"""
    import micropython

    r = Rig()
    stream = bytearray()
    for i in range(20):
        k = r.host.encode(p.MSG_DRIVE, struct.pack(p.DRIVE_FMT, 1000 + i, -1000 - i), 4)
        stream.extend(r.host.out[:k])
    r.fw.uart = ReplayUART(stream)
    fw = r.fw
    clock = r.clock
    locked = hasattr(micropython, "heap_lock")
    if locked:
        micropython.heap_lock()
    try:
        for _ in range(100):
            clock.t += 10
            fw.step()
    finally:
        if locked:
            micropython.heap_unlock()
    check(fw.parser.frames_ok == 20, "expected 20 drive frames, got %d" % fw.parser.frames_ok)
    check(fw.right_mradps == 0 and not r.moving(), "commands did not expire after the stream ended")
    check(fw.uart.written > 0, "no telemetry sent")


def _lcg(x):
    return (x * 1103515245 + 12345) & 0x7FFFFFFF


def case_protocol_crc_and_corruption():
    check(p.crc32(b"123456789") == 0xCBF43926, "CRC-32 check value")
    enc = p.FrameEncoder()
    parser = p.FrameParser()
    x = 8
    accepted_bad = 0
    good = 0
    payload = bytearray(p.MAX_PAYLOAD)
    for trial in range(300):
        x = _lcg(x)
        n = x % (p.MAX_PAYLOAD + 1)
        for i in range(n):
            x = _lcg(x)
            payload[i] = x & 0xFF
        k = enc.encode(trial & 0xFF, payload, n)
        frame = bytearray(enc.out[:k])
        x = _lcg(x)
        pos = x % (k - 1)
        x = _lcg(x)
        frame[pos] = frame[pos] ^ (1 + x % 255)
        if frame[pos] == 0:
            frame[pos] = 0x5A
        for b in frame:
            if parser.push(b):
                accepted_bad += 1
        k = enc.encode(p.MSG_PING, b"", 0)
        for i in range(k):
            if parser.push(enc.out[i]):
                good += 1
    check(accepted_bad == 0, "%d corrupted frames accepted" % accepted_bad)
    check(good == 300, "only %d clean frames after corruption" % good)


def names():
    out = []
    for k in sorted(globals()):
        if k.startswith("case_"):
            out.append(k)
    return out


def run_all():
    """Run every case; returns a list of (name, ok, message). Used by the MicroPython runner."""
    results = []
    g = globals()
    for name in names():
        try:
            g[name]()
            results.append((name, True, ""))
        except Exception as exc:  # report, do not stop: every case gets a verdict
            results.append((name, False, f"{type(exc).__name__}: {exc}"))
    return results
