"""Regolith MCU firmware (MicroPython subset): the control loop behind the serial link.

Every peripheral is passed in (``main.py`` wires the board; the tests pass fakes), so the same code runs on
the MCU, under CPython with stubs and under the MicroPython WebAssembly port. Buffers are allocated in
``__init__``; ``step`` allocates nothing, telemetry included (checked with ``micropython.heap_lock`` under
real MicroPython, tests/firmware/cases.py). Received commands are decoded by hand (``_i16``), not with
``struct.unpack``, which would build a tuple.

Safety rules enforced here, independently of the host:
- Command expiry: the wheels stop when no valid drive command arrived for ``COMMAND_EXPIRY_MS`` (the loop
  period is ``LOOP_MS``, so they stop within 250 ms of the last valid command).
- E-stop: the button (or a software ``MSG_ESTOP``) latches; motors and tool stop at once. Resuming needs two
  deliberate actions: ``MSG_RESUME_ARM`` then ``MSG_RESUME_CONFIRM`` within ``RESUME_WINDOW_MS``, both with
  the button released; after that the wheels stay still until a fresh drive command arrives.
- Watchdog: ``step`` feeds the hardware watchdog; a hung loop resets the MCU (reported in telemetry flags).
"""

import struct

import protocol as p
from drivers.motors import DUTY_MAX

COMMAND_EXPIRY_MS = 200
LOOP_MS = 10
TELEMETRY_MS = 20
RESUME_WINDOW_MS = 2000
MAX_WHEEL_MRADPS = 10000  # wheel speed at full duty (open-loop feed-forward)


def _i16(buf, off):
    v = buf[off] | (buf[off + 1] << 8)
    return v - 0x10000 if v & 0x8000 else v


class Firmware:
    def __init__(self, clock, uart, wdt, left_motors, right_motors, encoders, tool, estop, wdt_reset=False):
        """``clock`` offers ``ticks_ms`` and ``ticks_diff`` (the ``time`` module on the MCU);
        ``left_motors``/``right_motors`` are sequences of ``Motor``; ``encoders`` four ``Quadrature`` in
        the order front-left, front-right, rear-left, rear-right."""
        if len(encoders) != 4:
            raise ValueError("firmware needs 4 encoders (fl, fr, rl, rr)")
        self.clock = clock
        self.uart = uart
        self.wdt = wdt
        self.left = left_motors
        self.right = right_motors
        self.encoders = encoders
        self.tool = tool
        self.estop_in = estop
        self.wdt_reset = wdt_reset
        self.parser = p.FrameParser()
        self.encoder = p.FrameEncoder()
        self.rx = bytearray(64)
        self.tx_payload = bytearray(p.TELEMETRY_LEN)
        # one telemetry frame, zero-padded to its worst-case COBS length: extra zeros are idle delimiters,
        # so the whole buffer is written and no slice (a heap object) is needed
        self.tx_frame = bytearray(p.HEADER_LEN + p.TELEMETRY_LEN + p.CRC_LEN + 2)
        now = clock.ticks_ms()
        self.last_cmd_ms = now
        self.last_tx_ms = now
        self.have_cmd = False
        self.left_mradps = 0
        self.right_mradps = 0
        self.latched = False
        self.armed = False
        self.armed_ms = now
        self.last_seq = -1
        self.rejected = 0
        self.expired = True
        self.stop_all()

    # -- inputs -------------------------------------------------------------------------------------
    def poll_uart(self):
        uart = self.uart
        parser = self.parser
        while uart.any():
            n = uart.readinto(self.rx)
            if not n:
                break
            for i in range(n):
                if parser.push(self.rx[i]):
                    self.handle(parser.msg_type, parser.seq, parser.payload, parser.length)

    def handle(self, msg_type, seq, payload, length):
        if seq == self.last_seq:
            self.rejected = (self.rejected + 1) & 0xFFFF  # duplicate frame
            return
        self.last_seq = seq
        now = self.clock.ticks_ms()
        if msg_type == p.MSG_DRIVE and length == 4:
            if self.latched:
                return
            self.left_mradps = _i16(payload, 0)  # DRIVE_FMT "<hh", decoded without a tuple
            self.right_mradps = _i16(payload, 2)
            self.last_cmd_ms = now
            self.have_cmd = True
        elif msg_type == p.MSG_TOOL and length == 2:
            self.tool.set_target(_i16(payload, 0))  # TOOL_FMT "<h"
        elif msg_type == p.MSG_ESTOP and length == 0:
            self.latch()
        elif msg_type == p.MSG_RESUME_ARM and length == 0:
            if self.latched and not self.estop_in.pressed():
                self.armed = True
                self.armed_ms = now
        elif msg_type == p.MSG_RESUME_CONFIRM and length == 0:
            if (
                self.latched
                and self.armed
                and not self.estop_in.pressed()
                and self.clock.ticks_diff(now, self.armed_ms) <= RESUME_WINDOW_MS
            ):
                self.latched = False
                self.have_cmd = False  # wheels wait for a fresh drive command
            self.armed = False
        elif msg_type == p.MSG_PING and length == 0:
            pass
        else:
            self.rejected = (self.rejected + 1) & 0xFFFF

    def latch(self):
        self.latched = True
        self.armed = False
        self.have_cmd = False
        self.stop_all()

    # -- outputs ------------------------------------------------------------------------------------
    def stop_all(self):
        for m in self.left:
            m.stop()
        for m in self.right:
            m.stop()
        self.tool.stop()

    def drive(self):
        lduty = (self.left_mradps * DUTY_MAX) // MAX_WHEEL_MRADPS
        rduty = (self.right_mradps * DUTY_MAX) // MAX_WHEEL_MRADPS
        for m in self.left:
            m.set(lduty)
        for m in self.right:
            m.set(rduty)

    def flags(self):
        f = 0
        if self.latched:
            f |= p.FLAG_ESTOP
        if self.expired:
            f |= p.FLAG_EXPIRED
        if self.armed:
            f |= p.FLAG_ARMED
        if self.tool.stalled:
            f |= p.FLAG_STALLED
        if self.wdt_reset:
            f |= p.FLAG_WDT_RESET
        if self.estop_in.pressed():
            f |= p.FLAG_BUTTON
        return f

    def send_telemetry(self, now):
        e = self.encoders
        struct.pack_into(
            p.TELEMETRY_FMT,
            self.tx_payload,
            0,
            now,  # ticks_ms: < 2**30, a small int (0xFFFFFFFF would be a heap int)
            e[0].count,
            e[1].count,
            e[2].count,
            e[3].count,
            self.tool.position_mrad,
            self.tool.load_dn,
            self.flags(),
            self.last_seq & 0xFF,
            self.rejected,
        )
        k = self.encoder.encode(p.MSG_TELEMETRY, self.tx_payload, p.TELEMETRY_LEN)
        out = self.encoder.out
        frame = self.tx_frame
        for i in range(len(frame)):
            frame[i] = out[i] if i < k else 0
        self.uart.write(frame)

    # -- the loop -----------------------------------------------------------------------------------
    def step(self):
        """One control cycle: feed the watchdog, read the link and the e-stop, apply or expire commands,
        send telemetry at its rate."""
        self.wdt.feed()
        self.poll_uart()
        now = self.clock.ticks_ms()
        if self.estop_in.pressed() and not self.latched:
            self.latch()
        self.expired = (not self.have_cmd) or self.clock.ticks_diff(now, self.last_cmd_ms) > COMMAND_EXPIRY_MS
        if self.latched or self.expired:
            for m in self.left:
                m.stop()
            for m in self.right:
                m.stop()
            self.left_mradps = 0
            self.right_mradps = 0
        else:
            self.drive()
        self.tool.update(not self.latched)
        if self.clock.ticks_diff(now, self.last_tx_ms) >= TELEMETRY_MS:
            self.last_tx_ms = now
            self.send_telemetry(now)

    def run(self, sleep_ms):
        """Run forever at ``LOOP_MS`` (``sleep_ms`` is ``time.sleep_ms`` on the MCU)."""
        clock = self.clock
        while True:
            start = clock.ticks_ms()
            self.step()
            left = LOOP_MS - clock.ticks_diff(clock.ticks_ms(), start)
            if left > 0:
                sleep_ms(left)
