"""Construction journal: a crash (truncation at any byte) never loses a completed cycle nor repeats one on
resume; a flipped byte is always detected; corruption in the middle names the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from targets.journal import Journal, JournalError, encode_record, parse_journal, read_journal

PLAN = {
    "mission": "test",
    "cycles": [{"index": i, "rover_id": "r1" if i % 2 == 0 else "r2", "volume_m3": 0.015} for i in range(6)],
}


def _write_journal(path: Path, completed: int) -> list[int]:
    """A journal with the plan and ``completed`` cycles started and completed; returns the byte offset at
    which each completed record ends (when its cycle counts)."""
    ends: list[int] = []
    with Journal(path) as j:
        j.write_plan(PLAN)
        for i in range(completed):
            j.cycle_started(i, "r1", 10.0 * i)
            j.cycle_completed(i, "r1", 10.0 * i + 9.0, 0.01 + 0.001 * i)
            ends.append(path.stat().st_size)
        j.cycle_started(completed, "r1", 10.0 * completed)  # one cycle under way at the "crash"
    return ends


def test_round_trip_and_resume_api(tmp_path: Path) -> None:
    path = tmp_path / "journal.log"
    _write_journal(path, 3)
    s = read_journal(path)
    assert s.torn is None and s.plan == PLAN
    assert s.completed_indices() == [0, 1, 2] and set(s.started) == {0, 1, 2, 3}
    assert [c["index"] for c in s.pending_cycles()] == [3, 4, 5]
    assert s.completed_volume_m3() == pytest.approx(0.01 + 0.011 + 0.012)
    assert read_journal(tmp_path / "none.log").plan is None  # a missing journal is empty


def test_truncation_at_any_byte_never_loses_nor_repeats_a_cycle(tmp_path: Path) -> None:
    src = tmp_path / "full.log"
    ends = _write_journal(src, 4)
    data = src.read_bytes()
    path = tmp_path / "cut.log"
    for k in range(len(data) + 1):
        path.write_bytes(data[:k])
        s = read_journal(path)
        expected = [i for i, end in enumerate(ends) if end <= k]
        assert s.completed_indices() == expected, k  # nothing lost, nothing invented
        assert (s.torn is not None) == (k not in {0, len(data)} and data[k - 1 : k] != b"\n"), k
        # resume: finish every pending cycle; each ends up completed exactly once
        with Journal(path) as j:
            if j.state.plan is None:
                j.write_plan(PLAN)
            for c in j.state.pending_cycles():
                j.cycle_started(c["index"], c["rover_id"], 100.0)
                j.cycle_completed(c["index"], c["rover_id"], 101.0, 0.015)
        done = read_journal(path)
        assert done.torn is None and done.completed_indices() == list(range(6)), k


def test_flipped_byte_is_always_detected(tmp_path: Path) -> None:
    src = tmp_path / "full.log"
    _write_journal(src, 3)
    data = src.read_bytes()
    good = read_journal(src)
    path = tmp_path / "flip.log"
    last_line_start = data.rstrip(b"\n").rfind(b"\n") + 1
    for k in range(len(data)):
        flipped = bytearray(data)
        flipped[k] ^= 0x5A
        path.write_bytes(bytes(flipped))
        try:
            s = read_journal(path)
        except JournalError as exc:
            assert k < last_line_start or flipped[k : k + 1] == b"\n", k
            assert str(exc).startswith(f"{path}:{exc.line}: "), str(exc)
            continue
        # not an error: only the last line may be hit (or the newline before it, which merges the last two
        # lines), and then it is reported as torn, never accepted
        assert s.torn is not None and k >= last_line_start - 1, k
        assert s.records == good.records[: len(s.records)]
        assert len(s.records) == len(good.records) - (1 if k >= last_line_start else 2)


def test_corruption_in_the_middle_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "j.log"
    _write_journal(path, 2)
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"r1", b"r9")
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalError, match=r"j\.log:3: checksum mismatch"):
        read_journal(path)
    # a missing line is a gap in the sequence
    lines = _fresh(tmp_path)
    del lines[2]
    with pytest.raises(JournalError, match=r":3: sequence number 3, expected 2"):
        parse_journal(b"\n".join(lines), "x.log")


def _fresh(tmp_path: Path) -> list[bytes]:
    p = tmp_path / "fresh.log"
    p.unlink(missing_ok=True)
    _write_journal(p, 2)
    return p.read_bytes().split(b"\n")


def test_a_cycle_never_completes_twice(tmp_path: Path) -> None:
    path = tmp_path / "j.log"
    with Journal(path) as j:
        j.write_plan(PLAN)
        j.cycle_completed(0, "r1", 5.0, 0.01)
        with pytest.raises(ValueError, match="cycle 0 is already complete"):
            j.cycle_completed(0, "r1", 6.0, 0.01)
    forged = path.read_bytes() + encode_record(
        {"seq": 2, "kind": "cycle_completed", "cycle": 0, "rover": "r1", "t_s": 7.0, "volume_m3": 0.01}
    )
    with pytest.raises(JournalError, match=r":3: cycle 0 completed twice"):
        parse_journal(forged + encode_record({"seq": 3, "kind": "cycle_started", "cycle": 1}), "j.log")


def test_torn_tail_is_cut_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "j.log"
    _write_journal(path, 1)
    path.write_bytes(path.read_bytes() + b'0000abcd {"seq": 4, "ki')  # a crash mid-append
    s = read_journal(path)
    assert s.torn is not None and s.torn.reason.startswith("incomplete last line")
    with Journal(path) as j:
        assert j.state.torn is not None  # reported
        j.cycle_completed(1, "r1", 20.0, 0.02)
    s = read_journal(path)
    assert s.torn is None and s.completed_indices() == [0, 1]
