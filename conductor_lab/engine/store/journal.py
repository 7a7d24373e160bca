"""The commit log: group commits made durable by appending one framed record to a file.

``DuckDBStore.commit`` appends each group commit here (one ``os.pwrite`` of one frame after the
last one, then one ``os.fdatasync``) and returns; the store folds the records into its DuckDB tables in batches later
(``DuckDBStore.materialize``) and then deletes the log files that hold only folded records. Why a
plain file and not a DuckDB or SQLite transaction per commit: ``docs/storage.md`` (measured).

Layout: the directory ``<db>.journal/`` beside the DuckDB file holds numbered segment files
``000000000001.log``, ``000000000002.log``, ... and a ``LOCK`` file. Records are appended to the
*current* segment. A fold starts by rotating to a new segment, so the older segments hold only
records the fold covers; once the fold's DuckDB transaction has committed they are deleted whole.
One empty *spare* segment is kept created ahead (its directory entry already durable), so a
rotation never waits for a directory fsync on the commit path. A durable log's new segments are
written full of zeros (at least ``PREALLOCATE_BYTES``, more when the last segment needed more) and
made durable when they are created: frames overwrite blocks the file already has, which spares each
``fdatasync`` the metadata of a growing file and of extents first written. Zeros after the last
frame are the unused rest of a segment, never a torn frame (a frame starts with ``0xFF``).

Frame (little-endian)::

    magic b"\\xffJ" | version 1 | payload length u32 | crc32(payload) u32 | payload
    payload = seq u64 | the batch text (UTF-8 JSON, ``duckdb.encode_batch``)

A frame is valid only if it is complete and its crc matches. ``0xFF`` never occurs in UTF-8 text,
so the magic cannot appear inside a batch's JSON: that lets a scan look past a bad frame for valid
frames after it (see ``parse_segment``).

Recovery (``JournalLog.open``): segments are scanned in order. A bad frame (torn, or failing its
crc) is accepted only at the end of the last non-empty segment and only if no valid frame follows
it: that is the one write in flight at a crash, never acknowledged; the file is truncated to the
last good frame (a warning gives the byte count). A bad frame anywhere else is corruption and the
store refuses to open (``JournalCorruption`` names the file and the byte offset): an acknowledged
record may never be skipped silently. Sequence numbers strictly increase across the whole log.

Crash points for tests (``CONDUCTOR_LAB_CRASH``, read once when a store opens): ``crash_points``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import signal
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

__all__ = [
    "CRASH_ENV",
    "HEADER",
    "MAGIC",
    "VERSION",
    "CrashPoints",
    "JournalCorruption",
    "JournalLog",
    "PREALLOCATE_BYTES",
    "PREALLOCATE_MAX_BYTES",
    "Record",
    "Segment",
    "crash_points",
    "encode_frame",
    "parse_segment",
    "write_zeros",
]

log = logging.getLogger(__name__)

MAGIC = b"\xffJ"
VERSION = 1
#: magic, version, payload length, crc32 of the payload
HEADER = struct.Struct("<2sBII")
_SEQ = struct.Struct("<Q")
_MAX_PAYLOAD = 0xFFFF_FFFF
_SEGMENT = re.compile(r"^(\d{12})\.log$")
LOCK_NAME = "LOCK"
#: zeros written into each new segment of a durable log, at least. A frame written over blocks the
#: file already has spares its ``fdatasync`` the metadata update of a growing file; over blocks
#: already written (not ``posix_fallocate``d, whose extents are converted on their first write, a
#: journal commit per ``fdatasync``) it also spares that: half the CPU and the wall time of a sync
#: on the reference VM (docs/storage.md, "Preallocation", measured)
PREALLOCATE_BYTES = 4 * 1024 * 1024
#: a new segment gets room for 5/4 of what the last one held, up to this much
PREALLOCATE_MAX_BYTES = 64 * 1024 * 1024
_ZEROS = bytes(1024 * 1024)

#: ``<point>:<n>``: SIGKILL this process at the n-th time ``point`` is reached (tests only).
CRASH_ENV = "CONDUCTOR_LAB_CRASH"
CRASH_POINTS = ("journal-write", "fold-before-commit", "fold-after-commit")

Record = tuple[int, str]  # (seq, batch text)


class JournalCorruption(RuntimeError):
    """The log holds a bad frame where only acknowledged records can be: refuse to go on."""


# ---------------------------------------------------------------------- frames


def encode_frame(seq: int, text: str) -> bytes:
    """One record as a frame: header + (seq + UTF-8 text)."""
    payload = _SEQ.pack(seq) + text.encode()
    if len(payload) > _MAX_PAYLOAD:
        raise ValueError(f"a commit of {len(payload):,} bytes does not fit in one journal frame")
    return HEADER.pack(MAGIC, VERSION, len(payload), zlib.crc32(payload)) + payload


def _frame_at(data: bytes, off: int) -> tuple[int, str, int] | str:
    """``(seq, text, end offset)`` of the valid frame at ``off``, or why there is none."""
    if len(data) - off < HEADER.size:
        return "incomplete header"
    magic, version, length, crc = HEADER.unpack_from(data, off)
    if magic != MAGIC:
        return "no frame magic"
    if version != VERSION:
        return f"unknown frame version {version}"
    if length < _SEQ.size:
        return f"payload length {length} too short"
    start = off + HEADER.size
    end = start + length
    if end > len(data):
        return f"incomplete payload ({len(data) - start} of {length} bytes)"
    payload = memoryview(data)[start:end]
    if zlib.crc32(payload) != crc:
        return "crc mismatch"
    try:
        text = bytes(payload[_SEQ.size :]).decode()
    except UnicodeDecodeError:
        return "payload is not UTF-8"
    return _SEQ.unpack_from(payload)[0], text, end


def _next_room(used: int) -> int:
    """Zeros for a new segment after one that held ``used`` bytes of frames: 5/4 of it in whole
    MiB, within ``PREALLOCATE_BYTES`` .. ``PREALLOCATE_MAX_BYTES``."""
    want = -(-used * 5 // 4 // len(_ZEROS)) * len(_ZEROS)
    return min(PREALLOCATE_MAX_BYTES, max(PREALLOCATE_BYTES, want))


def write_zeros(fd: int, size: int) -> None:
    """Write ``size`` zero bytes from the start of the file (real blocks, not a reservation)."""
    at = 0
    while at < size:
        at += os.pwrite(fd, memoryview(_ZEROS)[: min(len(_ZEROS), size - at)], at)


def _only_zeros(data: bytes, off: int) -> bool:
    """Whether everything from ``off`` on is zero bytes (a frame starts with ``0xFF``)."""
    return data.count(b"\x00", off) == len(data) - off


def _holds_data(path: Path) -> bool:
    """Whether a segment file holds anything but zeros (a preallocated segment never written)."""
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            if chunk.count(b"\x00") != len(chunk):
                return True
    return False


def _valid_frame_after(data: bytes, off: int) -> int | None:
    """The offset of the first valid frame that starts after ``off``, if any."""
    pos = data.find(MAGIC, off + 1)
    while pos >= 0:
        if not isinstance(_frame_at(data, pos), str):
            return pos
        pos = data.find(MAGIC, pos + 1)
    return None


def parse_segment(data: bytes, name: str, *, tail_allowed: bool) -> tuple[list[Record], int]:
    """The records of one segment and the offset where its valid frames end.

    ``tail_allowed``: this is the last non-empty segment, whose final write may have been torn by a
    crash; a bad frame there is a torn tail when no valid frame follows it, and the returned offset
    is where to truncate. Any other bad frame raises ``JournalCorruption`` naming ``name`` and the
    byte offset.
    """
    records: list[Record] = []
    off = 0
    while off < len(data):
        got = _frame_at(data, off)
        if isinstance(got, str):
            if _only_zeros(data, off):  # the unused, preallocated rest of the segment
                return records, len(data)
            if not tail_allowed:
                raise JournalCorruption(
                    f"{name}: bad frame at byte offset {off} ({got}) in a segment that later records "
                    "follow; the commit log is corrupt, refusing to open (nothing acknowledged may be skipped)"
                )
            after = _valid_frame_after(data, off)
            if after is not None:
                raise JournalCorruption(
                    f"{name}: bad frame at byte offset {off} ({got}) followed by a valid frame at byte "
                    f"offset {after}; the commit log is corrupt, refusing to open (nothing acknowledged "
                    "may be skipped)"
                )
            return records, off
        seq, text, end = got
        records.append((seq, text))
        off = end
    return records, off


# ---------------------------------------------------------------------- crash points (tests)


@dataclass(slots=True)
class CrashPoints:
    """``CONDUCTOR_LAB_CRASH=<point>:<n>``: ``hit(point)`` kills the process the n-th time."""

    point: str
    n: int
    seen: int = 0

    def hit(self, point: str) -> None:
        if point == self.point:
            self.seen += 1
            if self.seen == self.n:
                die()


def crash_points() -> CrashPoints | None:
    """The crash point the environment asks for; None (the normal case) when it asks for none."""
    spec = os.environ.get(CRASH_ENV, "")
    if not spec:
        return None
    point, _, n = spec.rpartition(":")
    if point not in CRASH_POINTS or not n.isdigit() or int(n) < 1:
        raise ValueError(f"{CRASH_ENV}={spec!r}: expected <point>:<n>, point one of {', '.join(CRASH_POINTS)}")
    log.warning("%s=%s: this process will kill itself there (fault injection for tests)", CRASH_ENV, spec)
    return CrashPoints(point, int(n))


def die() -> NoReturn:
    """SIGKILL this process: no handler, no flush, no cleanup (as ``kill -9``)."""
    os.kill(os.getpid(), signal.SIGKILL)
    raise SystemExit(137)  # pragma: no cover - not reached


# ---------------------------------------------------------------------- the log


@dataclass(slots=True)
class Segment:
    """One segment file: its number and the last seq it holds (0 while it holds none)."""

    number: int
    path: Path
    last_seq: int = 0


@dataclass(slots=True)
class Recovered:
    """What ``JournalLog.open`` found: the unfolded records and what it repaired."""

    records: list[Record] = field(default_factory=list)
    last_seq: int = 0
    skipped: int = 0  # records already folded (seq <= folded_seq)
    torn_bytes: int = 0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class JournalLog:
    """Append-only segment files in ``<db>.journal/``; one instance per store (``LOCK``).

    ``append`` and ``rotate`` run under the store's writer lock, ``release``/``close`` under its
    materializer lock: the store serialises the calls, this class does no locking of its own.
    """

    def __init__(self, directory: Path, *, durable: bool, crash: CrashPoints | None = None) -> None:
        self.dir = directory
        self.durable = durable
        self._crash = crash
        self._lock_fd = -1
        self._fd = -1
        self._size = 0  # bytes of whole frames in the current segment
        self._current: Segment | None = None
        self._spare: Segment | None = None
        self._closed_segments: list[Segment] = []  # older segments, oldest first
        self._room = PREALLOCATE_BYTES  # zeros for the next new segment (``_next_room``)
        self._failed: BaseException | None = None

    # -- open / recover ------------------------------------------------------------------------

    def open(self, folded_seq: int) -> Recovered:
        """Lock the directory, scan and repair the segments, start a new current segment.

        Records with ``seq <= folded_seq`` are in the tables already (a crash between a fold's
        commit and the deletion of its segments): they are counted, not returned.
        """
        created = not self.dir.exists()
        self.dir.mkdir(parents=True, exist_ok=True)
        if created and self.durable:
            _fsync_dir(self.dir.parent)
        self._lock_fd = os.open(self.dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = -1
            raise RuntimeError(f"{self.dir} is in use by another store of this process") from None
        try:
            found = self._recover(folded_seq)
            top = max((s.number for s in self._closed_segments), default=0)
            self._current = self._create(top + 1)
            self._spare = self._create(top + 2)
            self._sync_dir()
            self._fd = self._open_segment(self._current.path)
        except BaseException:
            self.close(clean=False)
            raise
        return found

    def _segments_on_disk(self) -> list[Segment]:
        segs = []
        for p in self.dir.iterdir():
            m = _SEGMENT.match(p.name)
            if m:
                segs.append(Segment(int(m.group(1)), p))
        return sorted(segs, key=lambda s: s.number)

    def _recover(self, folded_seq: int) -> Recovered:
        segs = self._segments_on_disk()
        last_nonempty = max((i for i, s in enumerate(segs) if _holds_data(s.path)), default=-1)
        out = Recovered(last_seq=folded_seq)
        prev = 0
        for i, seg in enumerate(segs):  # one segment in memory at a time
            data = seg.path.read_bytes()
            records, end = parse_segment(data, str(seg.path), tail_allowed=i == last_nonempty)
            for seq, text in records:
                if seq <= prev:
                    raise JournalCorruption(
                        f"{seg.path}: record seq {seq} after seq {prev}; the commit log is corrupt, refusing to open"
                    )
                prev = seq
                if seq <= folded_seq:
                    out.skipped += 1
                else:
                    out.records.append((seq, text))
            if records:
                seg.last_seq = records[-1][0]
            if end < len(data):
                out.torn_bytes = len(data.rstrip(b"\x00")) - end  # not the preallocated zeros after it
                log.warning(
                    "%s: dropped a torn frame of %d bytes at byte offset %d (a crash during a commit "
                    "that was never acknowledged)",
                    seg.path,
                    out.torn_bytes,
                    end,
                )
                os.truncate(seg.path, end)
                if self.durable:
                    fd = os.open(seg.path, os.O_RDWR)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
        out.last_seq = max(folded_seq, prev)
        self._closed_segments = segs
        return out

    # -- writes ----------------------------------------------------------------------------------

    def append(self, seq: int, text: str) -> None:
        """Write one record as one frame (one ``os.write``, looping on short writes), then
        ``fdatasync`` (durable stores). Raises on any failure; the log then stays usable only if
        the partial frame could be cut off again."""
        if self._failed is not None:
            raise RuntimeError(f"{self.dir}: the commit log failed earlier: {self._failed}") from self._failed
        frame = encode_frame(seq, text)
        fd = self._fd
        try:
            if self._crash is not None:
                self._crash_in_write(fd, frame)
            view, at = memoryview(frame), self._size
            while view:  # at the end of the frames, inside the segment's preallocated space
                n = os.pwrite(fd, view, at)
                view, at = view[n:], at + n
        except BaseException:
            self._cut()
            raise
        if self.durable:
            try:
                os.fdatasync(fd)
            except BaseException as exc:
                # the kernel may have dropped the dirty pages (and forgotten the error): nothing
                # written since the last good fdatasync can be trusted any more
                self._failed = exc
                self._cut()
                raise
        self._size += len(frame)
        assert self._current is not None
        self._current.last_seq = seq

    def _crash_in_write(self, fd: int, frame: bytes) -> None:
        assert self._crash is not None
        if self._crash.point == "journal-write" and self._crash.seen + 1 == self._crash.n:
            os.pwrite(fd, frame[: len(frame) // 2], self._size)  # the first half reaches the file, then kill -9
        self._crash.hit("journal-write")

    def _cut(self) -> None:
        """Cut a partly written frame off again, so the next frame follows the last whole one; if
        that fails too, refuse every later append (a frame after a torn one is unreadable)."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError as exc:
            self._failed = self._failed or exc

    def rotate(self) -> None:
        """Start appending to a new segment (the spare); the previous one joins the closed ones.
        A current segment that holds nothing yet is kept."""
        assert self._current is not None
        if self._size == 0:
            return
        new = self._spare if self._spare is not None else self._create(self._current.number + 1, sync=True)
        fd = self._open_segment(new.path)
        os.close(self._fd)
        self._closed_segments.append(self._current)
        self._room = _next_room(self._size)
        self._current, self._spare, self._fd, self._size = new, None, fd, 0

    def release(self, upto: int) -> int:
        """Delete the closed segments whose records are all folded (``seq <= upto``), make sure a
        spare segment exists, and fsync the directory once for both. Returns the files deleted."""
        keep: list[Segment] = []
        gone = 0
        for seg in self._closed_segments:
            if seg.last_seq <= upto:
                seg.path.unlink(missing_ok=True)
                gone += 1
            else:
                keep.append(seg)
        self._closed_segments = keep
        made = False
        if self._spare is None and self._current is not None:
            self._spare = self._create(self._current.number + 1)
            made = True
        if gone or made:
            self._sync_dir()
        return gone

    # -- helpers ---------------------------------------------------------------------------------

    def _create(self, number: int, *, sync: bool = False) -> Segment:
        """A new segment file; for a durable log written full of zeros (``_room`` bytes) and that
        made durable here, off the commit path (the spare is made ahead of its use)."""
        path = self.dir / f"{number:012d}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if self.durable and self._room:
                try:
                    write_zeros(fd, self._room)
                    os.fsync(fd)
                except OSError as exc:  # no room: the segment grows as it is written
                    log.debug("%s: not preallocated (%s)", path, exc)
        finally:
            os.close(fd)
        if sync:
            self._sync_dir()
        return Segment(number, path)

    @staticmethod
    def _open_segment(path: Path) -> int:
        """Frames are written with ``pwrite`` at the end of the valid ones, not appended: the file
        is longer than its frames (the preallocated zeros)."""
        return os.open(path, os.O_WRONLY | os.O_CLOEXEC)

    def _sync_dir(self) -> None:
        if self.durable:
            _fsync_dir(self.dir)

    def segment_files(self) -> list[Path]:
        """The segment files on disk, oldest first (tests, stats)."""
        return [s.path for s in self._segments_on_disk()]

    def close(self, *, clean: bool) -> None:
        """Close the files. ``clean``: every record is folded, so the segments, the lock file and
        the directory are removed (a closed store leaves nothing but its DuckDB file)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if clean and self._lock_fd >= 0:
            for p in self.segment_files():
                p.unlink(missing_ok=True)
            (self.dir / LOCK_NAME).unlink(missing_ok=True)
            try:
                self.dir.rmdir()
            except OSError:
                pass  # something else lives there: leave it
            if self.durable:
                _fsync_dir(self.dir.parent)
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1
        self._current = self._spare = None
        self._closed_segments = []
