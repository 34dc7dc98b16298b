"""Crash-safe construction journal: an append-only file of checksummed records (I/O shell around the pure
planner).

Format: one record per line, ``CRC HEX JSON\\n`` where ``CRC`` is the CRC-32 (``zlib.crc32``, 8 lower-case hex
digits) of the UTF-8 JSON text, and the JSON is an object with a sequence number ``seq`` (0, 1, 2, ...) and
a ``kind``:

- ``plan``: ``{"plan": Plan.to_dict()}``; a later plan (a replan) replaces the earlier one;
- ``cycle_started``: ``{"cycle": index, "rover": id, "t_s": mission time}``;
- ``cycle_completed``: ``{"cycle": index, "rover": id, "t_s": ..., "volume_m3": measured volume}``.

Durability: every record is written with one ``write`` and ``os.fsync``'d before the call returns, so a
cycle counts as completed only once its record is on disk (the directory is fsync'd when the file is
created). Reading back: a last line that is incomplete or fails its check is a torn write (a crash during
the append): it is ignored and reported (``JournalState.torn``), and ``Journal`` truncates it before it
appends again. A bad line anywhere before the last, a gap in ``seq`` or a cycle completed twice is
corruption: ``JournalError`` names the file and line.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

KINDS = ("plan", "cycle_started", "cycle_completed")


class JournalError(ValueError):
    """The journal is corrupt (not just torn at its end): ``file``, ``line`` (1-based) and ``reason``."""

    def __init__(self, file: str, line: int, reason: str) -> None:
        self.file, self.line, self.reason = file, line, reason
        super().__init__(f"{file}:{line}: {reason}")


@dataclass(frozen=True, slots=True)
class TornTail:
    """The ignored last line: its number, byte offset (where the good data ends) and why it was rejected."""

    line: int
    offset: int
    reason: str


@dataclass(slots=True)
class JournalState:
    """What a journal says: the current plan (the last plan record), started and completed cycles by index,
    every good record, the length of the good data and the torn tail, if any."""

    path: str
    plan: dict[str, Any] | None = None
    started: dict[int, dict[str, Any]] = field(default_factory=dict)
    completed: dict[int, dict[str, Any]] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    good_bytes: int = 0
    torn: TornTail | None = None

    def completed_indices(self) -> list[int]:
        return sorted(self.completed)

    def pending_cycles(self) -> list[dict[str, Any]]:
        """The current plan's cycles not yet completed, in plan order (the resume point)."""
        if self.plan is None:
            return []
        return [c for c in self.plan.get("cycles", []) if int(c["index"]) not in self.completed]

    def completed_volume_m3(self) -> float:
        return sum(float(r.get("volume_m3", 0.0)) for r in self.completed.values())


def encode_record(record: Mapping[str, Any]) -> bytes:
    """``CRC JSON\\n`` of one record (compact, sorted keys, finite numbers only)."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")
    if b"\n" in text:  # json.dumps escapes newlines; this guards the line framing
        raise ValueError("encode_record: a record must not contain a raw newline")
    return f"{zlib.crc32(text):08x} ".encode("ascii") + text + b"\n"


def _decode_line(raw: bytes) -> dict[str, Any]:
    """One line (without its newline) -> record; ValueError with the reason if it fails its check."""
    if len(raw) < 10 or raw[8:9] != b" ":
        raise ValueError("not a 'CRC JSON' line")
    crc_text, body = raw[:8], raw[9:]
    try:
        crc = int(crc_text.decode("ascii"), 16)
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"bad checksum field {crc_text!r}") from None
    if crc_text != crc_text.lower() or zlib.crc32(body) != crc:
        raise ValueError("checksum mismatch")
    try:
        rec = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"bad JSON: {exc}") from None
    if not isinstance(rec, dict) or rec.get("kind") not in KINDS or not isinstance(rec.get("seq"), int):
        raise ValueError("not a journal record (needs seq and kind)")
    return rec


def parse_journal(data: bytes, path: str = "<journal>") -> JournalState:
    """Read journal bytes (see the module docstring); raise ``JournalError`` on corruption."""
    state = JournalState(path)
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the data ends with a newline, else an incomplete last line
    offset = 0
    for number, raw in enumerate(lines, start=1):
        last = number == len(lines) and not tail
        try:
            rec = _decode_line(raw)
        except ValueError as exc:
            if last:
                state.torn = TornTail(number, offset, str(exc))
                return state
            raise JournalError(path, number, str(exc)) from None
        if rec["seq"] != len(state.records):
            raise JournalError(path, number, f"sequence number {rec['seq']}, expected {len(state.records)}")
        _apply(state, rec, number)
        state.records.append(rec)
        offset += len(raw) + 1
        state.good_bytes = offset
    if tail:
        state.torn = TornTail(len(lines) + 1, offset, "incomplete last line (torn write)")
    return state


def _apply(state: JournalState, rec: dict[str, Any], number: int) -> None:
    kind = rec["kind"]
    if kind == "plan":
        plan = rec.get("plan")
        if not isinstance(plan, dict) or not isinstance(plan.get("cycles"), list):
            raise JournalError(state.path, number, "plan record without a plan (cycles)")
        state.plan = plan
        return
    cycle = rec.get("cycle")
    if not isinstance(cycle, int):
        raise JournalError(state.path, number, f"{kind} record without a cycle index")
    if kind == "cycle_started":
        if cycle in state.completed:
            raise JournalError(state.path, number, f"cycle {cycle} started again after it completed")
        state.started[cycle] = rec
    else:
        if cycle in state.completed:
            raise JournalError(state.path, number, f"cycle {cycle} completed twice")
        state.completed[cycle] = rec


def read_journal(path: str | Path) -> JournalState:
    """Read a journal file (a missing file is an empty journal)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return JournalState(str(p))
    return parse_journal(data, str(p))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """Append records durably. Opening an existing journal reads it (``state``), and cuts a torn tail off
    (reported in ``state.torn``) so new records never follow garbage."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        existed = self.path.exists()
        self.state = read_journal(self.path)
        if self.state.torn is not None:
            with open(self.path, "r+b") as f:
                f.truncate(self.state.torn.offset)
                f.flush()
                os.fsync(f.fileno())
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if not existed:
            os.fsync(self._fd)
            _fsync_dir(self.path.parent if str(self.path.parent) else Path("."))

    def _append(self, kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        if self._fd < 0:
            raise ValueError(f"{self.path}: journal is closed")
        rec = {**fields, "kind": kind, "seq": len(self.state.records)}
        line = encode_record(rec)
        view = memoryview(line)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        os.fsync(self._fd)
        _apply(self.state, rec, len(self.state.records) + 1)
        self.state.records.append(rec)
        self.state.good_bytes += len(line)
        return rec

    def write_plan(self, plan: Mapping[str, Any]) -> None:
        """Record the (re)plan: a JSON-able dict with a ``cycles`` list (``Plan.to_dict()``)."""
        self._append("plan", {"plan": dict(plan)})

    def cycle_started(self, cycle: int, rover_id: str, t_s: float) -> None:
        if cycle in self.state.completed:
            raise ValueError(f"{self.path}: cycle {cycle} is already complete")
        self._append("cycle_started", {"cycle": int(cycle), "rover": rover_id, "t_s": float(t_s)})

    def cycle_completed(self, cycle: int, rover_id: str, t_s: float, volume_m3: float) -> None:
        """Record a completed cycle with its measured volume; it counts once this returns (fsync'd)."""
        if cycle in self.state.completed:
            raise ValueError(f"{self.path}: cycle {cycle} is already complete")
        self._append(
            "cycle_completed",
            {"cycle": int(cycle), "rover": rover_id, "t_s": float(t_s), "volume_m3": float(volume_m3)},
        )

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
