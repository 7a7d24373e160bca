"""Thread-local capture of what a worker function prints and logs, for the task's log.

Two pieces, both only active while something holds :func:`routing` (a running
:class:`~conductor_lab.client.worker.WorkerRunner` holds it from ``start()`` to ``stop()``):

* ``sys.stdout`` and ``sys.stderr`` are replaced by routers. A write from a thread inside
  :func:`capturing` goes to that thread's :class:`Capture`; a write from any other thread (the
  notebook's own cells, ipykernel's threads) goes to the original stream, unchanged. Every other
  attribute is forwarded to the original, so ipykernel's ``OutStream`` keeps working
  (``set_parent``, ``flush``, ``fileno``...).
* a handler on the root logger keeps the records emitted on capturing threads. To see INFO records
  when the root logger is at WARNING (Python's default), the root level is lowered while routing is
  held; the handlers that were on the root logger get a filter holding them to the old level, and
  records that used to reach ``logging.lastResort`` (no handler configured) still do.

When the last holder releases, the original streams, the root level and the handlers' filters are
put back (a stream somebody else replaced in the meantime is left alone).

Known limits: output of threads started by the worker function, C-level writes to file
descriptors 1/2, and ``sys.stdout.buffer`` writes are not captured; handlers on non-root loggers
without a level of their own see the lowered level; ``logging.basicConfig()`` without ``force=True``
does nothing while routing is held (the root logger has a handler: ours).
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

Json = dict[str, Any]

CAPTURE_LIMIT = 64 * 1024
"""Characters of printed/logged text kept per task; the rest is counted and dropped."""

RECORD_FORMAT = "%(levelname)s %(name)s: %(message)s"

_local = threading.local()


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class LogLine:
    """One captured line (a printed line or a logging record) and when it was written."""

    created_time: int  # epoch milliseconds
    text: str


class Capture:
    """What one task execution printed and logged, in order, up to ``limit`` characters.

    Printed text is split into lines (empty lines are dropped); a logging record is one entry,
    however many lines it has (a record with ``exc_info`` carries its traceback).
    """

    def __init__(self, limit: int = CAPTURE_LIMIT, level: int = logging.INFO) -> None:
        self.limit = limit
        self.level = level
        self.lines: list[LogLine] = []
        self.size = 0  # characters kept
        self.dropped = 0  # characters over the limit
        self._partial: list[str] = []
        self._partial_time = 0
        self._lock = threading.Lock()  # a Capture may be shared with a helper thread (async fns)

    def write(self, text: str) -> int:
        """Printed text (any number of lines, possibly a partial one)."""
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            pieces = text.split("\n")
            for i, piece in enumerate(pieces):
                if piece:
                    if not self._partial:
                        self._partial_time = _now_ms()
                    kept = self._keep(piece)
                    if kept:
                        self._partial.append(kept)
                if i < len(pieces) - 1:
                    self._end_line()
        return len(text)

    def record(self, text: str, created_time: int) -> None:
        """A formatted logging record."""
        with self._lock:
            self._end_line()
            kept = self._keep(text)
            if kept.strip():
                self.lines.append(LogLine(created_time, kept))

    def close(self) -> None:
        """End a pending partial line and add the truncation note, if anything was dropped."""
        with self._lock:
            self._end_line()
            if self.dropped:
                note = (
                    f"[output truncated: {self.dropped} more characters; the limit is {self.limit} per task]"
                )
                self.lines.append(LogLine(_now_ms(), note))
                self.dropped = 0

    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def log_entries(self, task_id: str | None, max_entries: int) -> list[Json]:
        """The lines as TaskExecLog dicts; consecutive lines share an entry when there are more
        lines than ``max_entries`` (the server keeps a bounded number of entries per TaskResult)."""
        lines = self.lines
        if not lines or max_entries <= 0:
            return []
        per_entry = max(1, math.ceil(len(lines) / max_entries))
        return [
            {
                "log": "\n".join(line.text for line in lines[i : i + per_entry]),
                "taskId": task_id,
                "createdTime": lines[i].created_time,
            }
            for i in range(0, len(lines), per_entry)
        ]

    def _keep(self, text: str) -> str:
        room = max(self.limit - self.size, 0)
        if len(text) > room:
            self.dropped += len(text) - room
            text = text[:room]
        self.size += len(text)
        return text

    def _end_line(self) -> None:
        if self._partial:
            line = "".join(self._partial)
            self._partial = []
            if line.strip():
                self.lines.append(LogLine(self._partial_time, line))


def current() -> Capture | None:
    """The capture active on this thread, if any."""
    cap: Capture | None = getattr(_local, "capture", None)
    return cap


@contextmanager
def bound(cap: Capture | None) -> Iterator[Capture | None]:
    """Make ``cap`` this thread's capture for the block (e.g. in a helper thread running a coroutine)."""
    previous = current()
    _local.capture = cap
    try:
        yield cap
    finally:
        _local.capture = previous


@contextmanager
def capturing(limit: int = CAPTURE_LIMIT, level: int = logging.INFO) -> Iterator[Capture]:
    """Capture this thread's prints and log records (at ``level`` or above) into a new :class:`Capture`.

    Prints reach it only while :func:`routing` is held; the capture is closed on exit.
    """
    cap = Capture(limit, level)
    try:
        with bound(cap):
            yield cap
    finally:
        cap.close()


# ------------------------------------------------------------------------------------------------
# Routing: the stream routers and the root-logger handler, installed while somebody holds them


class _Router:
    """Stands in for ``sys.stdout``/``sys.stderr``: capturing threads write to their Capture,
    every other thread to the original stream; all other attributes are the original's."""

    def __init__(self, original: TextIO) -> None:
        self._original = original

    def write(self, text: str) -> int:
        cap: Capture | None = getattr(_local, "capture", None)
        if cap is None:
            return self._original.write(text)
        return cap.write(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if getattr(_local, "capture", None) is None:
            self._original.flush()

    def __getattr__(self, name: str) -> Any:
        if name == "_original":  # not set yet (copy/pickle): do not recurse
            raise AttributeError(name)
        return getattr(self._original, name)

    def __repr__(self) -> str:
        return f"<capture router over {self._original!r}>"


class _LevelGate(logging.Filter):
    """Holds a pre-existing root handler to the root level it had before routing lowered it."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level


class _CaptureHandler(logging.Handler):
    """On a capturing thread: the record goes to the Capture. Elsewhere: stands in for
    ``logging.lastResort`` when the record would have reached it before this handler existed."""

    def __init__(self, original_root_level: int) -> None:
        super().__init__()
        self.original_root_level = original_root_level
        self.setFormatter(logging.Formatter(RECORD_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        cap: Capture | None = getattr(_local, "capture", None)
        if cap is not None:
            if record.levelno >= cap.level:
                cap.record(self.format(record), int(record.created * 1000))
            return
        last_resort = logging.lastResort
        if last_resort is None or record.levelno < last_resort.level:
            return
        logger = logging.root if record.name == "root" else logging.getLogger(record.name)
        if record.levelno < self.original_root_level and _level_comes_from_root(logger):
            return  # dropped by the root level before we lowered it
        if not _other_handlers(logger, self):
            last_resort.handle(record)


def _level_comes_from_root(logger: logging.Logger) -> bool:
    node: logging.Logger | None = logger
    while node is not None:
        if node.level:
            return node is logging.root
        node = node.parent
    return True


def _other_handlers(logger: logging.Logger, ours: logging.Handler) -> bool:
    node: logging.Logger | None = logger
    while node is not None:
        if any(h is not ours for h in node.handlers):
            return True
        if not node.propagate:
            return False
        node = node.parent
    return False


class _Installation:
    """Everything changed while routing is held, and how to put it back."""

    def __init__(self) -> None:
        self.levels: list[int] = []
        self.routers: dict[str, _Router] = {}
        self.root_level = logging.root.level
        self.handler = _CaptureHandler(self.root_level)
        self.gates: list[tuple[logging.Handler, _LevelGate]] = []
        self.set_level: int | None = None  # the root level we set, if we changed it

    def open(self) -> None:
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if stream is not None:
                router = _Router(stream)
                self.routers[name] = router
                setattr(sys, name, router)
        logging.root.addHandler(self.handler)

    def lower_root_level(self) -> None:
        """Make the root logger pass the lowest level any holder asked for."""
        wanted = min(self.levels)
        root = logging.root
        if self.set_level is None:
            if not self.root_level or self.root_level <= wanted:
                return  # already passes what we want
            for h in root.handlers:
                if h is not self.handler:
                    gate = _LevelGate(self.root_level)
                    h.addFilter(gate)
                    self.gates.append((h, gate))
        elif root.level != self.set_level or wanted >= self.set_level:
            return  # somebody set their own level meanwhile, or it is low enough
        root.setLevel(wanted)
        self.set_level = wanted

    def close(self) -> None:
        for name, router in self.routers.items():
            if getattr(sys, name) is router:
                setattr(sys, name, router._original)
        logging.root.removeHandler(self.handler)
        for h, gate in self.gates:
            h.removeFilter(gate)
        if self.set_level is not None and logging.root.level == self.set_level:
            logging.root.setLevel(self.root_level)


_install_lock = threading.Lock()
_installation: _Installation | None = None


def install(level: int = logging.INFO) -> None:
    """Take a hold on routing (stream routers + root handler), capturing records at ``level`` and up.

    Holds are counted; each needs a :func:`release`.
    """
    global _installation
    with _install_lock:
        if _installation is None:
            _installation = _Installation()
            _installation.open()
        _installation.levels.append(level)
        _installation.lower_root_level()


def release(level: int = logging.INFO) -> None:
    """Give back a hold taken with :func:`install`; the last one restores everything."""
    global _installation
    with _install_lock:
        if _installation is None:
            return
        if level in _installation.levels:
            _installation.levels.remove(level)
        elif _installation.levels:
            _installation.levels.pop()
        if not _installation.levels:
            _installation.close()
            _installation = None


def installed() -> bool:
    """Whether somebody holds routing right now."""
    return _installation is not None


@contextmanager
def routing(level: int = logging.INFO) -> Iterator[None]:
    """Hold routing for the block (see :func:`install`)."""
    install(level)
    try:
        yield
    finally:
        release(level)
