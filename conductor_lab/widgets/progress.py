"""A live table of what a :class:`~conductor_lab.client.worker.WorkerRunner` is doing.

    runner = WorkerRunner(url, [Worker("fetch", fetch, threads=4)])
    runner.start()
    WorkerProgress(runner)        # last expression of a cell: one row per task type, live

One row per task type: state, threads, polled, running (executing now), completed, failed,
errors, tasks/s over the last few seconds and the age of the last poll answer. The numbers come
from ``runner.snapshot()`` (Python computes; the view only shows them).

In a Jupyter kernel with ipywidgets the table is an ``ipywidgets.HTML`` in a ``VBox``, refreshed
about four times a second by a timer on the kernel's asyncio loop (captured when the object is
created in a cell; ``loop.call_later`` re-arms it), so widgets are only ever touched on that loop,
never from worker threads. The timer makes a final refresh and ends when the runner stops.
Elsewhere (plain Python, no running loop) the object is a static snapshot: ``repr`` gives a text
table and ``_repr_html_`` an HTML one; :class:`TextProgress` draws tqdm bars from a thread.
``_repr_mimebundle_`` always carries the HTML snapshot as the static fallback (nbconvert, GitHub).
"""

from __future__ import annotations

import asyncio
import html
import logging
import threading
from typing import IO, Any

from conductor_lab.client.worker import RunnerSnapshot, TaskTypeStats, WorkerRunner

log = logging.getLogger(__name__)

REFRESH_SECONDS = 0.25
COLUMNS = (
    "task type",
    "state",
    "threads",
    "polled",
    "running",
    "completed",
    "failed",
    "errors",
    "tasks/s",
    "last poll",
)
_STATE_MARK = {"running": "▶", "stopping": "◼", "stopped": "■"}


def _in_kernel() -> bool:
    """True inside an IPython kernel cell (a running asyncio loop and ipywidgets importable)."""
    try:
        asyncio.get_running_loop()
        import ipywidgets  # noqa: F401  (optional dependency)
        from IPython import get_ipython  # optional dependency
    except (RuntimeError, ImportError):
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 60:
        return f"{seconds:.1f} s ago"
    return f"{seconds / 60:.0f} min ago"


def row_cells(snapshot: RunnerSnapshot, row: TaskTypeStats) -> tuple[str, ...]:
    """The displayed cells of one task type, in ``COLUMNS`` order."""
    return (
        row.task_type,
        f"{_STATE_MARK.get(snapshot.state, '')} {snapshot.state}".strip(),
        str(row.threads),
        str(row.polled),
        str(row.running),
        str(row.completed),
        str(row.failed),
        str(row.errors),
        f"{row.rate:.1f}",
        _age(row.last_poll_age),
    )


def render_text(snapshot: RunnerSnapshot) -> str:
    """A fixed-width table (stable: no addresses, no wall-clock times)."""
    rows = [COLUMNS, *(row_cells(snapshot, r) for r in snapshot.types)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    if not snapshot.types:
        lines.append("(no workers)")
    return "\n".join(lines)


_TABLE_STYLE = "border-collapse:collapse;font-family:var(--jp-code-font-family,monospace);font-size:12px"
_CELL_STYLE = "padding:2px 10px;text-align:right;border-bottom:1px solid #ddd"
_FIRST_STYLE = "padding:2px 10px;text-align:left;border-bottom:1px solid #ddd"


def render_html(snapshot: RunnerSnapshot) -> str:
    """The same table as HTML (inline styles only: it must also stand alone in a saved notebook)."""

    def cells(values: tuple[str, ...], tag: str) -> str:
        out = []
        for i, v in enumerate(values):
            style = _FIRST_STYLE if i < 2 else _CELL_STYLE
            out.append(f'<{tag} style="{style}">{html.escape(v)}</{tag}>')
        return "<tr>" + "".join(out) + "</tr>"

    body = "".join(cells(row_cells(snapshot, r), "td") for r in snapshot.types)
    if not snapshot.types:
        body = f'<tr><td colspan="{len(COLUMNS)}" style="{_FIRST_STYLE}">(no workers)</td></tr>'
    return (
        f'<table class="conductor-lab-worker-progress" style="{_TABLE_STYLE}">'
        f"<thead>{cells(COLUMNS, 'th')}</thead><tbody>{body}</tbody></table>"
    )


class _EndWatch:
    """Decides when a display stops refreshing: the runner is stopped after having run (or
    having been started again) since the display was created."""

    def __init__(self, runner: WorkerRunner) -> None:
        self.starts = runner.starts
        self.seen_running = runner.state != "stopped"

    def finished(self, snapshot: RunnerSnapshot) -> bool:
        if snapshot.state != "stopped":
            self.seen_running = True
            return False
        return self.seen_running or snapshot.starts > self.starts


class WorkerProgress:
    """Per-task-type progress of a runner: live ipywidgets table in a kernel, snapshot elsewhere.

    ``live=None`` decides by itself (live inside a kernel cell); ``live=True`` needs a running
    asyncio loop (the timer's home) and ipywidgets.
    """

    def __init__(
        self, runner: WorkerRunner, *, interval: float = REFRESH_SECONDS, live: bool | None = None
    ) -> None:
        self.runner = runner
        self.interval = interval
        self.refreshes = 0
        self._end = _EndWatch(runner)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.table: Any = None  # ipywidgets.HTML with the table, when live
        self.widget: Any = None  # ipywidgets.VBox shown in the cell, when live
        if live is None:
            live = _in_kernel()
        if live:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                raise RuntimeError(
                    "a live WorkerProgress needs a running asyncio loop (a kernel cell)"
                ) from None
            import ipywidgets  # optional dependency

            self.table = ipywidgets.HTML(value=render_html(runner.snapshot()))
            self.widget = ipywidgets.VBox([self.table])
            self._timer = self._loop.call_later(self.interval, self._tick)

    @property
    def live(self) -> bool:
        """True while the timer refreshes the widget."""
        return self._timer is not None

    def snapshot(self) -> RunnerSnapshot:
        return self.runner.snapshot()

    def watch(self) -> None:
        """Refresh again until the runner next stops (e.g. after it was started again); call on the
        loop's thread. Does nothing while already refreshing."""
        if self._loop is None:
            raise RuntimeError("this WorkerProgress is a static snapshot (created outside a kernel loop)")
        if self._timer is None:
            self._end = _EndWatch(self.runner)
            self._timer = self._loop.call_later(self.interval, self._tick)

    def _tick(self) -> None:
        """One refresh, on the kernel's loop; re-arms itself until the runner has stopped."""
        self._timer = None
        try:
            snapshot = self.runner.snapshot()
            value = render_html(snapshot)
            if self.table.value != value:
                self.table.value = value
            self.refreshes += 1
            if self._end.finished(snapshot):
                return  # that was the final refresh
        except Exception:  # a display must not kill the loop; keep trying
            log.exception("worker progress refresh failed")
        if self._loop is not None and not self._loop.is_closed():
            self._timer = self._loop.call_later(self.interval, self._tick)

    def close(self) -> None:
        """Stop refreshing and close the widgets (call on the loop's thread)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.widget is not None:
            self.widget.close()
            self.table.close()

    def __repr__(self) -> str:
        snapshot = self.runner.snapshot()
        return f"WorkerProgress({snapshot.state})\n{render_text(snapshot)}"

    def _repr_html_(self) -> str:
        return render_html(self.runner.snapshot())

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {}
        if self.widget is not None:
            bundle.update(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["text/plain"] = repr(self)
        bundle["text/html"] = self._repr_html_()
        return bundle


class TextProgress:
    """tqdm bars (one per task type) for a runner, drawn from a daemon thread; for plain Python.

    Each bar counts finished tasks; its postfix shows running / failed / errors. The thread ends
    (closing the bars) when the runner stops, or on :meth:`close`.
    """

    def __init__(self, runner: WorkerRunner, *, interval: float = 0.5, file: IO[str] | None = None) -> None:
        from tqdm import tqdm  # optional dependency

        self.runner = runner
        self.interval = interval
        self._end = _EndWatch(runner)
        self._closed = threading.Event()
        self.bars = {
            row.task_type: tqdm(desc=row.task_type, unit="task", file=file, position=i, leave=True)
            for i, row in enumerate(runner.snapshot().types)
        }
        self._thread = threading.Thread(target=self._run, name="worker-progress-text", daemon=True)
        self._thread.start()

    def _draw(self, snapshot: RunnerSnapshot) -> None:
        for row in snapshot.types:
            bar = self.bars[row.task_type]
            done = row.completed + row.failed + row.in_progress
            bar.set_postfix_str(
                f"{snapshot.state}, running {row.running}, failed {row.failed}, errors {row.errors}",
                refresh=False,
            )
            bar.update(done - bar.n)  # update() also redraws
            bar.refresh()

    def _run(self) -> None:
        while True:
            snapshot = self.runner.snapshot()
            self._draw(snapshot)
            if self._end.finished(snapshot) or self._closed.wait(self.interval):
                break
        for bar in self.bars.values():
            bar.close()

    def close(self, timeout: float = 5.0) -> None:
        self._closed.set()
        self._thread.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the display to end (the runner stopped); True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()
