"""The shared MCU link protocol (hw/link/protocol.py): COBS, CRC-32, version, sequence numbers, resync.

Property tests feed randomly corrupted frame streams to the parser: every frame it accepts must be one of
the frames that was sent, byte for byte (0 corrupted frames accepted), and it never raises.
"""

from __future__ import annotations

import random
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from hw.link import protocol as p

payloads = st.binary(min_size=0, max_size=p.MAX_PAYLOAD)
msg = st.tuples(st.integers(0, 255), st.integers(0, 255), payloads)


def parse_all(stream: bytes) -> tuple[p.FrameParser, list[tuple[int, int, bytes]]]:
    parser = p.FrameParser()
    got = []
    for b in stream:
        if parser.push(b):
            got.append((parser.msg_type, parser.seq, bytes(parser.payload[: parser.length])))
    return parser, got


def test_crc32_matches_zlib_check_value() -> None:
    assert p.crc32(b"123456789") == 0xCBF43926 == zlib.crc32(b"123456789")


@given(st.binary(max_size=300))
def test_crc32_equals_zlib(data: bytes) -> None:
    assert p.crc32(data) == zlib.crc32(data)


@given(st.binary(max_size=600))
def test_cobs_roundtrip_has_no_zero(data: bytes) -> None:
    enc = bytearray(len(data) + len(data) // 254 + 2)
    k = p.cobs_encode_into(data, len(data), enc, 0)
    assert 0 not in enc[:k]
    dec = bytearray(len(data) + 1)
    m = p.cobs_decode_into(enc, k, dec)
    assert bytes(dec[:m]) == data


@given(msg)
def test_frame_roundtrip(m: tuple[int, int, bytes]) -> None:
    t, seq, payload = m
    frame = p.encode(t, seq, payload)
    assert len(frame) <= p.MAX_ENCODED
    assert frame[-1] == 0 and 0 not in frame[:-1]
    assert frame[1] == p.VERSION or frame[0] != 0  # first byte is the COBS code
    parser, got = parse_all(frame)
    assert got == [(t, seq, payload)]
    assert parser.errors() == 0


def test_encoder_rejects_oversized_payload() -> None:
    enc = p.FrameEncoder()
    try:
        enc.encode(p.MSG_DRIVE, bytes(p.MAX_PAYLOAD + 1), p.MAX_PAYLOAD + 1)
    except ValueError as exc:
        assert "payload" in str(exc)
    else:
        raise AssertionError("oversized payload accepted")


def test_wrong_version_is_counted_and_dropped() -> None:
    raw = bytearray([p.VERSION + 1, 7, p.MSG_PING, 0])
    raw += zlib.crc32(bytes(raw)).to_bytes(4, "little")
    enc = bytearray(p.MAX_ENCODED)
    k = p.cobs_encode_into(raw, len(raw), enc, 0)
    parser, got = parse_all(bytes(enc[:k]) + b"\x00" + p.encode(p.MSG_PING, 8, b""))
    assert got == [(p.MSG_PING, 8, b"")]
    assert parser.err_version == 1


def test_sequence_numbers_wrap_modulo_256() -> None:
    enc = p.FrameEncoder()
    stream = bytearray()
    for _ in range(300):
        k = enc.encode(p.MSG_PING, b"", 0)
        stream += enc.out[:k]
    _, got = parse_all(bytes(stream))
    assert [s for _, s, _ in got] == [i & 0xFF for i in range(300)]


@settings(max_examples=300)
@given(st.binary(max_size=400), msg)
def test_resyncs_after_garbage(garbage: bytes, m: tuple[int, int, bytes]) -> None:
    """Whatever garbage came before, a delimiter and then a clean frame are received."""
    t, seq, payload = m
    _parser, got = parse_all(garbage + b"\x00" + p.encode(t, seq, payload))
    assert got[-1] == (t, seq, payload)
    # anything accepted from the garbage itself would have to be a valid frame inside it
    for g in got[:-1]:
        assert p.encode(*g) in garbage + b"\x00"


corruption = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(0, 7)),
    st.tuples(st.just("set"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 20)),
)


def corrupt(stream: bytearray, ops: list[tuple[str, int, int]]) -> bytearray:
    for kind, pos, arg in ops:
        if not stream:
            break
        i = pos % len(stream)
        if kind == "flip":
            stream[i] ^= 1 << arg
        elif kind == "set":
            stream[i] = arg
        elif kind == "insert":
            stream.insert(i, arg)
        else:
            del stream[i : i + arg]
    return stream


@settings(max_examples=400)
@given(st.lists(msg, min_size=1, max_size=12), st.lists(corruption, min_size=1, max_size=8))
def test_no_corrupted_frame_is_ever_accepted(msgs: list[tuple[int, int, bytes]], ops: list) -> None:
    sent = set(msgs)
    stream = bytearray(b"".join(p.encode(*m) for m in msgs))
    parser, got = parse_all(bytes(corrupt(stream, ops)))
    for g in got:
        assert g in sent, f"corrupted frame accepted: {g}"
    assert parser.frames_ok == len(got)


def test_random_corruption_trials_zero_accepted() -> None:
    """Seeded stress: 20,000 corrupted frames (1-4 random byte changes each, including ones that keep the
    COBS structure valid); the parser must reject every one, and receive the clean frame sent after it."""
    rng = random.Random(8)
    parser = p.FrameParser()
    trials = 20_000
    accepted_corrupt = 0
    clean_received = 0
    corrupted = 0
    for trial in range(trials):
        payload = rng.randbytes(rng.randint(0, p.MAX_PAYLOAD))
        frame = bytearray(p.encode(rng.randint(0, 255), trial & 0xFF, payload))
        original = bytes(frame)
        for _ in range(rng.randint(1, 4)):
            frame[rng.randrange(len(frame) - 1)] = rng.randint(1, 255)  # non-zero: stays one frame
        if bytes(frame) == original:
            continue
        corrupted += 1
        for b in frame:
            if parser.push(b):
                accepted_corrupt += 1
        clean = p.encode(p.MSG_PING, trial & 0xFF, b"")
        ok = False
        for b in clean:
            ok = parser.push(b) or ok
        clean_received += ok
    assert accepted_corrupt == 0
    assert corrupted > 0.99 * trials
    assert clean_received == corrupted
