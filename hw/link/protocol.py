"""Regolith MCU link protocol: one module shared by the host (``hw.drivers.mcu_link``) and the MicroPython
firmware (``targets/mcu``; the firmware build copies this file into the MCU image as ``protocol.py``).

Written in the MicroPython subset: no typing imports, no dataclasses, no f-strings in hot paths, only
``struct``; buffers are preallocated and the per-byte paths allocate nothing (CRC-32 is computed in two
16-bit halves so every intermediate is a small int on a 32-bit MCU).

Wire format, one frame::

    raw   = version(u8) seq(u8) type(u8) len(u8) payload(len bytes) crc32(u32 LE over the first 4+len bytes)
    frame = COBS(raw) 0x00

- COBS (consistent overhead byte stuffing) removes every zero from ``raw``; 0x00 delimits frames, so a
  receiver that lost sync recovers at the next zero.
- CRC-32 is the IEEE 802.3 / zlib polynomial (reflected 0xEDB88320, init and final xor 0xFFFFFFFF).
- ``version`` must equal ``VERSION``; a frame of another version is counted and dropped.
- ``seq`` counts frames per sender modulo 256; receivers use it to drop duplicates and count gaps.

The parser never raises on input bytes: garbage, truncation, overlong frames and bad CRCs are counted in its
``err_*`` counters and dropped.
"""

import struct

VERSION = 1
MAX_PAYLOAD = 48
HEADER_LEN = 4
CRC_LEN = 4
MAX_RAW = HEADER_LEN + MAX_PAYLOAD + CRC_LEN
# COBS adds one code byte per 254 data bytes plus one; the frame adds the 0x00 delimiter.
MAX_ENCODED = MAX_RAW + MAX_RAW // 254 + 2

# Message types. Host -> MCU: 0x01..0x7F; MCU -> host: 0x80..0xFF.
MSG_DRIVE = 0x01  # <hh  left, right wheel speed targets, mrad/s
MSG_TOOL = 0x02  # <h   tool joint target, mrad
MSG_ESTOP = 0x03  # (empty) software e-stop: latches like the button
MSG_RESUME_ARM = 0x04  # (empty) first deliberate resume action
MSG_RESUME_CONFIRM = 0x05  # (empty) second deliberate resume action, within RESUME_WINDOW_MS of ARM
MSG_PING = 0x06  # (empty) keeps the link alive without moving (does not refresh the motor command)
MSG_TELEMETRY = 0x81  # TELEMETRY_FMT, see below

DRIVE_FMT = "<hh"
TOOL_FMT = "<h"
# mcu ticks ms (u32), 4 encoder counts (i32: fl, fr, rl, rr), tool position mrad (i16), tool load dN (i16),
# flags (u8), last accepted host seq (u8), host frames rejected (u16)
TELEMETRY_FMT = "<IiiiihhBBH"
TELEMETRY_LEN = struct.calcsize(TELEMETRY_FMT)

FLAG_ESTOP = 0x01  # e-stop latched (button or software); motors off
FLAG_EXPIRED = 0x02  # no valid drive command within the command expiry; motors off
FLAG_ARMED = 0x04  # resume armed, waiting for confirm
FLAG_STALLED = 0x08  # tool overload
FLAG_WDT_RESET = 0x10  # the last reset was caused by the watchdog
FLAG_BUTTON = 0x20  # the e-stop input is pressed right now


def _make_tables() -> "tuple[tuple[int, ...], tuple[int, ...]]":
    lo = [0] * 256
    hi = [0] * 256
    for n in range(256):
        c = n
        for _ in range(8):
            c = 3988292384 ^ c >> 1 if c & 1 else c >> 1
        lo[n] = c & 0xFFFF
        hi[n] = (c >> 16) & 0xFFFF
    return tuple(lo), tuple(hi)


_CRC_LO, _CRC_HI = _make_tables()


def crc32_into(buf: "bytes | bytearray | memoryview", start: int, end: int, out: bytearray, off: int) -> None:
    """CRC-32 of ``buf[start:end]`` written little-endian into ``out[off:off + 4]``. Allocates nothing: the
    register is kept as two 16-bit halves, so every intermediate stays a small int on a 32-bit MCU."""
    lo = 0xFFFF
    hi = 0xFFFF
    tlo = _CRC_LO
    thi = _CRC_HI
    for i in range(start, end):
        idx = (lo ^ buf[i]) & 0xFF
        lo = ((lo >> 8) | ((hi & 0xFF) << 8)) ^ tlo[idx]
        hi = (hi >> 8) ^ thi[idx]
    lo ^= 0xFFFF
    hi ^= 0xFFFF
    out[off] = lo & 0xFF
    out[off + 1] = lo >> 8
    out[off + 2] = hi & 0xFF
    out[off + 3] = hi >> 8


def crc32(data: "bytes | bytearray | memoryview") -> int:
    """CRC-32 of ``data`` as one int (host helper, allocates; equals ``zlib.crc32``)."""
    out = bytearray(4)
    crc32_into(data, 0, len(data), out, 0)
    return out[0] | (out[1] << 8) | (out[2] << 16) | (out[3] << 24)


def cobs_encode_into(src: "bytes | bytearray | memoryview", n: int, dst: bytearray, start: int) -> int:
    """COBS-encode ``src[:n]`` into ``dst`` from ``start``; returns the index after the last byte written
    (no delimiter). ``dst`` must have room for ``n + n // 254 + 1`` bytes."""
    code_i = start
    out = start + 1
    code = 1
    for i in range(n):
        b = src[i]
        if b == 0:
            dst[code_i] = code
            code_i = out
            out += 1
            code = 1
        else:
            dst[out] = b
            out += 1
            code += 1
            if code == 0xFF:
                dst[code_i] = code
                code_i = out
                out += 1
                code = 1
    dst[code_i] = code
    return out


def cobs_decode_into(src: "bytes | bytearray | memoryview", n: int, dst: bytearray) -> int:
    """COBS-decode ``src[:n]`` (no delimiter) into ``dst``; returns the decoded length, or -1 when the input
    is not valid COBS (a zero byte, a code running past the end) or does not fit ``dst``."""
    i = 0
    out = 0
    cap = len(dst)
    while i < n:
        code = src[i]
        if code == 0:
            return -1
        i += 1
        end = i + code - 1
        if end > n:
            return -1
        if out + (code - 1) > cap:
            return -1
        while i < end:
            b = src[i]
            if b == 0:
                return -1
            dst[out] = b
            out += 1
            i += 1
        if code != 0xFF and i < n:
            if out >= cap:
                return -1
            dst[out] = 0
            out += 1
    return out


class FrameEncoder:
    """Builds frames into preallocated buffers. ``encode`` returns the frame length in ``self.out``."""

    def __init__(self) -> None:
        self.raw = bytearray(MAX_RAW)
        self.out = bytearray(MAX_ENCODED)
        self.seq = 0

    def encode(self, msg_type: int, payload: "bytes | bytearray | memoryview", n: int) -> int:
        """Encode ``payload[:n]`` as one frame with the next sequence number; returns its length in ``out``
        (delimiter included). Raises ValueError on a bad type or an oversized payload."""
        if n < 0 or n > MAX_PAYLOAD:
            raise ValueError("payload length out of range")
        if msg_type < 0 or msg_type > 0xFF:
            raise ValueError("message type out of range")
        raw = self.raw
        raw[0] = VERSION
        raw[1] = self.seq
        raw[2] = msg_type
        raw[3] = n
        for i in range(n):
            raw[HEADER_LEN + i] = payload[i]
        end = HEADER_LEN + n
        crc32_into(raw, 0, end, raw, end)
        k = cobs_encode_into(raw, end + CRC_LEN, self.out, 0)
        self.out[k] = 0
        self.seq = (self.seq + 1) & 0xFF
        return k + 1


class FrameParser:
    """Byte-at-a-time receiver. ``push(b)`` returns True when a valid frame just completed; its fields are
    then in ``msg_type``, ``seq`` and ``payload`` (a preallocated buffer, valid ``length`` bytes) until the
    next ``push``. Never raises on input; every dropped frame is counted."""

    def __init__(self) -> None:
        self.buf = bytearray(MAX_ENCODED)
        self.raw = bytearray(MAX_RAW)
        self.payload = bytearray(MAX_PAYLOAD)
        self.crc = bytearray(CRC_LEN)
        self.n = 0
        self.overflow = False
        self.msg_type = 0
        self.seq = 0
        self.length = 0
        self.frames_ok = 0
        self.err_cobs = 0
        self.err_crc = 0
        self.err_version = 0
        self.err_length = 0
        self.err_overflow = 0

    def errors(self) -> int:
        return self.err_cobs + self.err_crc + self.err_version + self.err_length + self.err_overflow

    def push(self, b: int) -> bool:
        if b != 0:
            if self.overflow:
                return False
            if self.n >= MAX_ENCODED:
                self.overflow = True
                self.err_overflow += 1
                return False
            self.buf[self.n] = b
            self.n += 1
            return False
        n = self.n
        self.n = 0
        if self.overflow:
            self.overflow = False
            return False
        if n == 0:
            return False  # idle delimiter, not an error
        m = cobs_decode_into(self.buf, n, self.raw)
        if m < 0:
            self.err_cobs += 1
            return False
        if m < HEADER_LEN + CRC_LEN:
            self.err_length += 1
            return False
        raw = self.raw
        length = raw[3]
        if length > MAX_PAYLOAD or HEADER_LEN + length + CRC_LEN != m:
            self.err_length += 1
            return False
        end = HEADER_LEN + length
        crc = self.crc
        crc32_into(raw, 0, end, crc, 0)
        if raw[end] != crc[0] or raw[end + 1] != crc[1] or raw[end + 2] != crc[2] or raw[end + 3] != crc[3]:
            self.err_crc += 1
            return False
        if raw[0] != VERSION:
            self.err_version += 1
            return False
        for i in range(length):
            self.payload[i] = raw[HEADER_LEN + i]
        self.seq = raw[1]
        self.msg_type = raw[2]
        self.length = length
        self.frames_ok += 1
        return True


def encode(msg_type: int, seq: int, payload: "bytes | bytearray") -> bytes:
    """Host/test helper: one frame as bytes with an explicit sequence number (allocates)."""
    enc = FrameEncoder()
    enc.seq = seq & 0xFF
    k = enc.encode(msg_type, payload, len(payload))
    return bytes(enc.out[:k])
