"""The commit log (``engine/store/journal.py``): frames, torn tails, corruption, segments, crash points."""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conductor_lab.engine.store.journal import (
    CRASH_ENV,
    HEADER,
    PREALLOCATE_BYTES,
    PREALLOCATE_MAX_BYTES,
    JournalCorruption,
    JournalLog,
    _next_room,
    crash_points,
    encode_frame,
    parse_segment,
)

ROOT = Path(__file__).resolve().parents[2]

TEXTS = ['{"w":[["w1"]]}', '{"t":[["ünïcødé ✓", "x"]]}', "{}", '{"l":[["' + "x" * 300 + '"]]}']


def frames(first_seq: int = 1, texts: list[str] = TEXTS) -> list[bytes]:
    return [encode_frame(first_seq + i, t) for i, t in enumerate(texts)]


def write_segments(d: Path, *segments: bytes) -> list[Path]:
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, data in enumerate(segments, start=1):
        p = d / f"{i:012d}.log"
        p.write_bytes(data)
        paths.append(p)
    return paths


def open_log(d: Path, folded_seq: int = 0, durable: bool = True) -> tuple[JournalLog, list[tuple[int, str]]]:
    log = JournalLog(d, durable=durable)
    found = log.open(folded_seq)
    return log, found.records


# ---------------------------------------------------------------------- frames


def test_frame_layout() -> None:
    f = encode_frame(258, "hé")
    magic, version, length, crc = HEADER.unpack_from(f)
    assert (magic, version, length) == (b"\xffJ", 1, 8 + 3)
    assert f[HEADER.size : HEADER.size + 8] == (258).to_bytes(8, "little")
    assert f[HEADER.size + 8 :] == "hé".encode()
    assert parse_segment(f, "s", tail_allowed=False) == ([(258, "hé")], len(f))


def test_whole_frames_parse_back() -> None:
    data = b"".join(frames())
    records, end = parse_segment(data, "s", tail_allowed=False)
    assert records == [(i + 1, t) for i, t in enumerate(TEXTS)] and end == len(data)
    assert parse_segment(b"", "s", tail_allowed=False) == ([], 0)


def test_torn_tail_at_every_byte_of_the_last_frame() -> None:
    fs = frames()
    good = b"".join(fs[:-1])
    last = fs[-1]
    expected = [(i + 1, t) for i, t in enumerate(TEXTS[:-1])]
    for cut in range(len(last)):  # 0 = the frame never started; len - 1 = one byte missing
        records, end = parse_segment(good + last[:cut], "s", tail_allowed=True)
        assert (records, end) == (expected, len(good)), cut
        if cut:  # the same bytes where no tail may be torn: corruption
            with pytest.raises(JournalCorruption, match=f"s: bad frame at byte offset {len(good)} "):
                parse_segment(good + last[:cut], "s", tail_allowed=False)


def test_torn_tail_at_every_byte_is_cut_off_at_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ~700 opens, each writing the zeros of two new segments: small ones are enough here
    monkeypatch.setattr("conductor_lab.engine.store.journal.PREALLOCATE_BYTES", 64 * 1024)
    fs = frames()
    good = b"".join(fs[:-1])
    last = fs[-1]
    for cut in range(1, len(last)):
        d = tmp_path / f"cut{cut}"
        (seg,) = write_segments(d, good + last[:cut])
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="conductor_lab.engine.store.journal"):
            log, records = open_log(d)
        assert records == [(i + 1, t) for i, t in enumerate(TEXTS[:-1])]
        assert seg.stat().st_size == len(good)  # truncated to the last whole frame
        # counted up to its last non-zero byte (zeros after a frame may be preallocated space)
        torn = len(last[:cut].rstrip(b"\x00"))
        assert f"dropped a torn frame of {torn} bytes at byte offset {len(good)}" in caplog.text
        log.append(len(TEXTS), "next")  # appends go on in a new segment; the next open reads both
        log.close(clean=False)
        log, records = open_log(d)
        assert records[-1] == (len(TEXTS), "next") and len(records) == len(TEXTS)
        log.close(clean=False)


@pytest.mark.parametrize("where", ["last segment", "earlier segment"])
def test_a_flipped_byte_in_a_middle_frame_refuses_the_open(tmp_path: Path, where: str) -> None:
    fs = frames()
    start = len(fs[0])  # the second frame is the one damaged
    for pos in range(len(fs[1])):
        data = bytearray(b"".join(fs))
        data[start + pos] ^= 0x01
        d = tmp_path / f"{where.split()[0]}{pos}"
        segs = [bytes(data)] if where == "last segment" else [bytes(data), encode_frame(99, "later")]
        paths = write_segments(d, *segs)
        before = [p.read_bytes() for p in paths]
        with pytest.raises(JournalCorruption) as info:
            open_log(d)
        assert f"{paths[0]}: bad frame at byte offset {start} " in str(info.value), pos
        assert "refusing to open" in str(info.value)
        assert [p.read_bytes() for p in paths] == before  # nothing truncated or deleted
        assert sorted(p.name for p in d.iterdir()) == [*(p.name for p in paths), "LOCK"]  # no new segment
        log = JournalLog(d, durable=False)  # and the lock was released
        with pytest.raises(JournalCorruption):
            log.open(0)


def test_a_bad_last_frame_of_an_earlier_segment_is_corruption(tmp_path: Path) -> None:
    fs = frames()
    paths = write_segments(tmp_path, b"".join(fs)[:-3], encode_frame(9, "later"))
    with pytest.raises(JournalCorruption, match=f"{paths[0]}: bad frame at byte offset {sum(map(len, fs[:-1]))} "):
        open_log(tmp_path)


def test_a_damaged_last_frame_reads_as_torn(tmp_path: Path) -> None:
    """A flipped byte in the very last frame cannot be told from a torn write: it is dropped (the
    log trusts the disk for data it fdatasynced; what it guards against is crashes)."""
    fs = frames()
    data = bytearray(b"".join(fs))
    data[-1] ^= 0x01
    write_segments(tmp_path, bytes(data))
    log, records = open_log(tmp_path)
    assert [seq for seq, _ in records] == [1, 2, 3]
    log.close(clean=False)


def test_empty_segments_anywhere(tmp_path: Path) -> None:
    fs = frames()
    # empty segments before, between and after (a spare created ahead, a crash right after a rotation)
    write_segments(tmp_path, b"", fs[0] + fs[1], b"", fs[2] + fs[3][:5], b"", b"")
    log, records = open_log(tmp_path)
    assert [seq for seq, _ in records] == [1, 2, 3]  # the torn tail is at the end of the last non-empty one
    log.close(clean=False)
    log, records = open_log(tmp_path / "nothing")  # no directory yet
    assert records == []
    log.close(clean=True)
    assert not (tmp_path / "nothing").exists()


def test_seqs_must_increase_across_segments(tmp_path: Path) -> None:
    paths = write_segments(tmp_path, encode_frame(1, "a") + encode_frame(5, "b"), encode_frame(5, "again"))
    with pytest.raises(JournalCorruption, match=f"{paths[1]}: record seq 5 after seq 5"):
        open_log(tmp_path)


def test_folded_records_are_skipped_and_counted(tmp_path: Path) -> None:
    write_segments(tmp_path, b"".join(frames()[:2]), b"".join(frames()[2:]))
    log = JournalLog(tmp_path, durable=False)
    found = log.open(folded_seq=3)
    assert (found.records, found.skipped, found.last_seq) == ([(4, TEXTS[3])], 3, 4)
    log.close(clean=False)
    log = JournalLog(tmp_path, durable=False)
    assert log.open(folded_seq=10).last_seq == 10  # everything folded: seq goes on from the tables
    log.close(clean=False)


# ---------------------------------------------------------------------- segments


def test_rotate_and_release_delete_only_folded_segments(tmp_path: Path) -> None:
    log, _ = open_log(tmp_path)
    log.append(1, "a")
    log.append(2, "b")
    log.rotate()  # a fold of 1..2 starts
    log.append(3, "c")
    log.rotate()  # another fold starts before the first released: segments [1..2], [3]
    log.append(4, "d")
    assert log.release(2) == 1  # only the segment of 1..2 is folded
    assert [parse_segment(p.read_bytes(), p.name, tail_allowed=False)[0] for p in log.segment_files()] == [
        [(3, "c")], [(4, "d")], [],  # the spare is already there
    ]  # fmt: skip
    log.rotate()
    log.rotate()  # nothing appended since: the current segment stays
    assert log.release(4) == 2
    assert [parse_segment(p.read_bytes(), p.name, tail_allowed=False) for p in log.segment_files()] == [
        ([], PREALLOCATE_BYTES), ([], PREALLOCATE_BYTES),  # current and spare: zeros, no frames
    ]  # fmt: skip
    log.close(clean=True)
    assert not tmp_path.exists()


def test_one_log_per_directory(tmp_path: Path) -> None:
    first, _ = open_log(tmp_path)
    with pytest.raises(RuntimeError, match="in use by another store"):
        JournalLog(tmp_path, durable=True).open(0)
    first.append(1, "x")
    first.close(clean=False)
    again, records = open_log(tmp_path)
    assert records == [(1, "x")]
    again.close(clean=False)


# ---------------------------------------------------------------------- crash points


def test_crash_points_are_off_unless_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CRASH_ENV, raising=False)
    assert crash_points() is None
    monkeypatch.setenv(CRASH_ENV, "fold-after-commit:3")
    cp = crash_points()
    assert cp is not None and (cp.point, cp.n) == ("fold-after-commit", 3)
    cp.hit("journal-write")  # another point: counted nowhere
    cp.hit("fold-after-commit")
    assert cp.seen == 1
    for bad in ("nowhere:1", "journal-write", "journal-write:0", "journal-write:x"):
        monkeypatch.setenv(CRASH_ENV, bad)
        with pytest.raises(ValueError, match=CRASH_ENV):
            crash_points()


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from conductor_lab.engine.store.journal import JournalLog, crash_points

    log = JournalLog(Path(sys.argv[1]), durable=True, crash=crash_points())
    log.open(0)
    for seq in range(1, 11):
        log.append(seq, "x" * 100)
        print("appended", seq, flush=True)
    """
)


def test_journal_write_crash_point_kills_inside_the_nth_frame(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), CRASH_ENV: "journal-write:4"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "j")], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == -9, proc.stderr
    assert proc.stdout.split("\n")[:-1] == [f"appended {i}" for i in (1, 2, 3)]
    seg = tmp_path / "j" / "000000000001.log"
    frame = len(encode_frame(4, "x" * 100))
    data = seg.read_bytes()  # three frames and half of the fourth, then the preallocated zeros
    assert len(data.rstrip(b"\x00")) == 3 * frame + frame // 2 and len(data) == PREALLOCATE_BYTES
    log, records = open_log(tmp_path / "j")
    assert [seq for seq, _ in records] == [1, 2, 3] and seg.stat().st_size == 3 * frame
    log.close(clean=False)


def test_preallocated_segments_reopen_without_repairs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Zeros after the last frame are the unused rest of a segment: no torn frame, no truncation."""
    log, _ = open_log(tmp_path)
    for seq in (1, 2, 3):
        log.append(seq, TEXTS[seq])
    log.rotate()
    log.append(4, TEXTS[0])
    sizes = [p.stat().st_size for p in log.segment_files()]
    assert sizes == [PREALLOCATE_BYTES] * 2  # the first current and the spare made by open
    log.close(clean=False)
    with caplog.at_level(logging.WARNING):
        log, records = open_log(tmp_path)
    assert [seq for seq, _ in records] == [1, 2, 3, 4]
    assert "torn" not in caplog.text
    log.close(clean=False)


def test_a_torn_frame_before_the_preallocated_zeros(tmp_path: Path) -> None:
    log, _ = open_log(tmp_path)
    log.append(1, TEXTS[0])
    frame = encode_frame(2, TEXTS[1])
    first = log.segment_files()[0]
    log.close(clean=False)
    with first.open("r+b") as f:  # a crash half-way through the second frame's write
        f.seek(len(encode_frame(1, TEXTS[0])))
        f.write(frame[: len(frame) // 2])
    log, records = open_log(tmp_path)
    assert [seq for seq, _ in records] == [1]
    assert first.stat().st_size == len(encode_frame(1, TEXTS[0]))  # cut at the last whole frame
    log.append(2, TEXTS[1])
    log.close(clean=False)
    log, records = open_log(tmp_path)
    assert [seq for seq, _ in records] == [1, 2]
    log.close(clean=False)
    # the same damage in a segment that later frames follow is corruption, zeros or not
    segs = sorted(tmp_path.glob("*.log"))
    with segs[0].open("r+b") as f:
        f.seek(0)
        f.write(b"\xffJ\x09")
    with pytest.raises(JournalCorruption):
        open_log(tmp_path)


FS_IOC_FIEMAP = 0xC020660B
FIEMAP_FLAG_SYNC = 0x1
FIEMAP_EXTENT_UNWRITTEN = 0x800
_FIEMAP = struct.Struct("=QQIIII")  # start, length, flags, mapped extents, extent count, reserved
_EXTENT = struct.Struct("=QQQ16xI12x")  # logical, physical, length, flags


def extents(path: Path, most: int = 256) -> list[tuple[int, int, int]]:
    """(logical offset, length, flags) of each extent of a file (FIEMAP); skips where unsupported."""
    buf = bytearray(_FIEMAP.pack(0, 2**64 - 1, FIEMAP_FLAG_SYNC, 0, most, 0) + bytes(most * _EXTENT.size))
    with path.open("rb") as f:
        try:
            fcntl.ioctl(f.fileno(), FS_IOC_FIEMAP, buf)
        except OSError as exc:
            pytest.skip(f"no FIEMAP on this file system ({exc})")
    n = _FIEMAP.unpack_from(buf)[3]
    out = []
    for i in range(n):
        logical, _, length, flags = _EXTENT.unpack_from(buf, _FIEMAP.size + i * _EXTENT.size)
        out.append((logical, length, flags))
    return out


def test_new_segments_are_written_zeros_not_a_reservation(tmp_path: Path) -> None:
    """A frame must overwrite blocks already written: ``posix_fallocate``d (unwritten) extents make
    every ``fdatasync`` commit their conversion too (docs/storage.md, "Preallocation")."""
    log, _ = open_log(tmp_path)
    for p in log.segment_files():  # the current segment and the spare
        assert p.stat().st_size == PREALLOCATE_BYTES
        ext = extents(p)
        assert sum(length for _, length, _ in ext) >= PREALLOCATE_BYTES
        assert not [e for e in ext if e[2] & FIEMAP_EXTENT_UNWRITTEN], ext
        assert p.read_bytes() == bytes(PREALLOCATE_BYTES)
    log.close(clean=False)


def test_a_segment_that_outgrew_its_zeros_makes_the_next_ones_larger(tmp_path: Path) -> None:
    log, _ = open_log(tmp_path)
    big = "x" * (1024 * 1024)
    for seq in range(1, 7):  # ~6 MiB of frames: past the 4 MiB of zeros, the segment grows
        log.append(seq, big)
    log.rotate()  # the spare (4 MiB, made at open) becomes current
    assert log.release(6) == 1  # the grown segment is gone; a new spare is made
    sizes = [p.stat().st_size for p in log.segment_files()]
    assert sizes == [PREALLOCATE_BYTES, 8 * 1024 * 1024]  # 5/4 of ~6 MiB, in whole MiB
    log.append(7, "small")
    log.rotate()
    assert log.release(7) == 1
    assert [p.stat().st_size for p in log.segment_files()] == [8 * 1024 * 1024, PREALLOCATE_BYTES]  # back down
    log.close(clean=False)
    log, records = open_log(tmp_path)  # the larger current segment reopens: zeros, no frames, no repair
    assert records == []
    log.close(clean=False)


def test_room_for_a_new_segment_is_bounded() -> None:
    mib = 1024 * 1024
    assert _next_room(0) == PREALLOCATE_BYTES
    assert _next_room(3 * mib) == PREALLOCATE_BYTES
    assert _next_room(4 * mib) == 5 * mib
    assert _next_room(4 * mib + 1) == 6 * mib
    assert _next_room(10**12) == PREALLOCATE_MAX_BYTES


def test_a_volatile_log_writes_no_zeros(tmp_path: Path) -> None:
    log, _ = open_log(tmp_path, durable=False)
    assert [p.stat().st_size for p in log.segment_files()] == [0, 0]
    log.close(clean=False)
