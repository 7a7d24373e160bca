"""The engine's metrics, in Prometheus's text format (``GET /metrics``) via ``prometheus_client``.

Two kinds, priced differently:

* **Events** (counters and histograms) are counted where they happen, on the hot path, by the
  hook methods of :class:`Metrics` (``task_polled``, ``task_ended``, ``committed``...), into
  plain dicts and bucket lists (a few tenths of a microsecond an event; see the class) that
  :class:`_EventCollector` turns into metric families when scraped.
* **States** (gauges: queue depths, running workflows, the commit log's fold lag, file sizes)
  are computed at scrape time by :class:`_StateCollector` from what the engine already holds, so
  nothing is maintained per request.

Names are conductor-oss's (``core/.../metrics/Monitors.java``) where one exists, with its label
names (``taskType``, ``workflowName``, ``status``, ``version``), and they come out as Micrometer's
Prometheus registry writes them for a conductor-oss server: counters gain ``_total``
(``task_poll_total``) and timers are in seconds with a ``_seconds`` unit (``task_execution_seconds``).
The engine's own figures are prefixed ``conductor_lab_``. Differences from conductor-oss (its
``ownerApp`` and ``includeRetries`` labels are not kept; ``task_rate_limited`` and
``task_concurrent_execution_limited`` count held-back deliveries instead of being gauges set to
the limit; timers are histograms, not client-side percentiles) are listed in ``docs/compat.md``.

Every :class:`Metrics` has its own ``CollectorRegistry``, never the process-wide default one:
tests and the notebook Lab run several servers in one process. ``NO_METRICS`` (a
:class:`NullMetrics`) is what the engine holds when metrics are off (``serve --no-metrics``):
the same hooks, doing nothing.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from conductor_lab.engine.model import Task, TaskStatus, Workflow, WorkflowStatus

if TYPE_CHECKING:
    from conductor_lab.engine.runtime import Runtime

__all__ = ["Metrics", "NullMetrics", "NO_METRICS", "WorkflowCounts", "count_workflows", "commit_log_state"]

#: seconds, for task and workflow durations (sub-second system tasks to hour-long human ones)
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400)
#: seconds, for the group commit (first change queued -> durable) and the journal fold
COMMIT_BUCKETS = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 4.096)
#: seconds, for the event loop's lag and the garbage collector's pauses (engine/loopwatch.py)
PAUSE_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
#: changes (rows) in one group commit
GROUP_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)
#: workflows counted per slice at scrape time before yielding the loop (a million take ~0.3 s)
SCAN_SLICE = 20_000
#: reasonForIncompletion of a response timeout (engine/decide.py); other TIMED_OUT are task timeouts
RESPONSE_TIMEOUT_PREFIX = "responseTimeout"


class NullMetrics:
    """The hooks, doing nothing: what the engine calls when metrics are off."""

    enabled = False

    def task_polled(self, queue_name: str) -> None:
        """A poll request for a queue (``[domain:]taskType``), whatever it delivered."""

    def task_queue_wait(self, t: Task, now: int) -> None:
        """``t`` is delivered to a worker for the first time (its ``startTime`` was just set)."""

    def task_ended(self, t: Task) -> None:
        """``t`` reached a terminal status (``Runtime.task_changed``)."""

    def task_update_conflict(self, t: Task, wf: Workflow) -> None:
        """An update for a task or workflow that had already finished (ignored, as upstream)."""

    def task_rate_limited(self, task_def_name: str) -> None:
        """A delivery held back by ``rateLimitPerFrequency``."""

    def task_concurrency_limited(self, task_def_name: str) -> None:
        """A delivery held back by ``concurrentExecLimit``."""

    def workflow_started(self, wf: Workflow) -> None:
        """A workflow was created and took its first decisions."""

    def workflow_ended(self, wf: Workflow) -> None:
        """A workflow reached a terminal status (``WorkflowExecutor.end``)."""

    def committed(self, seconds: float, changes: int) -> None:
        """A group commit is durable: ``seconds`` since its first change was queued."""

    def folded(self, seconds: float) -> None:
        """Store maintenance (DuckDB: folding the commit log into the tables) took ``seconds``."""

    def recovered(self, seconds: float) -> None:
        """Loading definitions and running workflows at start took ``seconds``."""

    def loop_lag(self, seconds: float) -> None:
        """The loop watch's timer ran ``seconds`` late (engine/loopwatch.py)."""

    def gc_pause(self, generation: int, seconds: float) -> None:
        """A garbage collection of ``generation`` took ``seconds`` (any thread of the process)."""


NO_METRICS = NullMetrics()


@dataclass
class WorkflowCounts:
    """Non-terminal workflows in memory: RUNNING and PAUSED, and both by workflow name."""

    running: int = 0
    paused: int = 0
    by_name: dict[str, int] = field(default_factory=dict)


async def count_workflows(workflows: Mapping[str, Workflow]) -> WorkflowCounts:
    """Count the non-terminal workflows, yielding the loop every ``SCAN_SLICE`` of them.

    A million running workflows take ~0.3 s of Python: in one go that would hold every request
    for as long. The dict is copied first (a few ms at a million), so changes made while the
    count yields cannot break the iteration; the result is a gauge's snapshot, not a transaction.
    """
    items = list(workflows.values())
    counts = WorkflowCounts()
    by_name = counts.by_name
    running = WorkflowStatus.RUNNING
    paused = WorkflowStatus.PAUSED
    for start in range(0, len(items), SCAN_SLICE):
        for wf in items[start : start + SCAN_SLICE]:
            status = wf.status
            if status is running:
                counts.running += 1
            elif status is paused:
                counts.paused += 1
            else:
                continue
            name = wf.definition.name
            by_name[name] = by_name.get(name, 0) + 1
        if start + SCAN_SLICE < len(items):
            await asyncio.sleep(0)
    return counts


def commit_log_state(store: Any) -> dict[str, Any]:
    """The store's commit log figures (``DuckDBStore.commit_log_state``); empty for other stores."""
    fn = getattr(store, "commit_log_state", None)
    return dict(fn()) if callable(fn) else {}


class _Hist:
    """One histogram series: per-bucket counts (the last one is +Inf) and the sum."""

    __slots__ = ("counts", "total")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * (buckets + 1)
        self.total = 0.0


#: name, help, label names, bucket bounds: the histograms, by the attribute holding their series
_HISTOGRAMS: dict[str, tuple[str, str, tuple[str, ...], tuple[float, ...]]] = {
    "_wait": (
        "task_queue_wait_seconds",
        "Scheduled (or callback due) -> first delivered to a worker, by task definition",
        ("taskType",),
        DURATION_BUCKETS,
    ),
    "_exec": (
        "task_execution_seconds",
        "Task start -> terminal status, by task definition and status",
        ("taskType", "status"),
        DURATION_BUCKETS,
    ),
    "_wf_exec": (
        "workflow_execution_seconds",
        "Create -> COMPLETED, by workflow name",
        ("workflowName",),
        DURATION_BUCKETS,
    ),
    "_commit": (
        "conductor_lab_commit_latency_seconds",
        "Group commit: first change queued -> durable",
        (),
        COMMIT_BUCKETS,
    ),
    "_group": ("conductor_lab_commit_group_size", "Changes (rows) per group commit", (), GROUP_BUCKETS),
    "_fold": (
        "conductor_lab_fold_duration_seconds",
        "One store maintenance pass: folding the commit log into the DuckDB tables",
        (),
        COMMIT_BUCKETS,
    ),
    "_lag": (
        "conductor_lab_event_loop_lag_seconds",
        "How late a timer due every 0.1 s ran on the engine's event loop (every request waits for it)",
        (),
        PAUSE_BUCKETS,
    ),
    "_gc": (
        "conductor_lab_gc_pause_seconds",
        "Python garbage collections in the server's process, by generation (each holds the GIL)",
        ("generation",),
        PAUSE_BUCKETS,
    ),
}

#: name (``_total`` is appended), help, label names: the counters, by the attribute holding them
_COUNTERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "_poll": ("task_poll", "Poll requests, by queue ([domain:]taskType)", ("taskType",)),
    "_timeout": (
        "task_timeout",
        "Tasks TIMED_OUT by timeoutSeconds, totalTimeoutSeconds or pollTimeoutSeconds",
        ("taskType",),
    ),
    "_rto": ("task_response_timeout", "Tasks TIMED_OUT by responseTimeoutSeconds", ("taskType",)),
    "_rate": ("task_rate_limited", "Deliveries held back by rateLimitPerFrequency", ("taskType",)),
    "_conc": (
        "task_concurrent_execution_limited",
        "Deliveries held back by concurrentExecLimit",
        ("taskType",),
    ),
    "_conflict": (
        "task_update_conflict",
        "Updates of a task or workflow that had already finished (ignored); status: the finished one's",
        ("workflowName", "taskType", "status"),
    ),
    "_start": ("workflow_start_success", "Workflows started", ("workflowName", "version")),
    "_failure": (
        "workflow_failure",
        "Workflows that ended FAILED, TIMED_OUT or TERMINATED",
        ("workflowName", "status"),
    ),
}


class Metrics(NullMetrics):
    """The engine's metrics over one ``Runtime``, in a registry of its own (``self.registry``).

    The hooks keep plain Python numbers (a dict entry per label value, a list of bucket counts per
    histogram series): they run on the engine's event loop only, like the scrape, so they need no
    lock, and an event costs 0.2-0.6 us instead of the 1.3-3 us of ``prometheus_client``'s own
    ``Counter``/``Histogram`` (a lock per value, a linear scan of the buckets). The collectors turn
    them into ``prometheus_client`` metric families when scraped.
    """

    enabled = True

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        # counters: label value(s) -> count
        self._poll: dict[str, int] = {}
        self._timeout: dict[str, int] = {}
        self._rto: dict[str, int] = {}
        self._rate: dict[str, int] = {}
        self._conc: dict[str, int] = {}
        self._conflict: dict[tuple[str, str, Enum], int] = {}
        self._start: dict[tuple[str, str], int] = {}
        self._failure: dict[tuple[str, WorkflowStatus], int] = {}
        # histograms: label value(s) -> series
        self._wait: dict[str, _Hist] = {}
        self._exec: dict[tuple[str, TaskStatus], _Hist] = {}
        self._wf_exec: dict[str, _Hist] = {}
        self._commit: dict[tuple[()], _Hist] = {(): _Hist(len(COMMIT_BUCKETS))}
        self._group: dict[tuple[()], _Hist] = {(): _Hist(len(GROUP_BUCKETS))}
        self._fold: dict[tuple[()], _Hist] = {(): _Hist(len(COMMIT_BUCKETS))}
        self._commit_h = self._commit[()]
        self._group_h = self._group[()]
        self._fold_h = self._fold[()]
        self._lag: dict[tuple[()], _Hist] = {(): _Hist(len(PAUSE_BUCKETS))}
        self._lag_h = self._lag[()]
        self._gc: dict[str, _Hist] = {str(g): _Hist(len(PAUSE_BUCKETS)) for g in range(3)}
        self._gc_h = [self._gc[str(g)] for g in range(3)]
        self.recovery_seconds = 0.0
        self._counts = WorkflowCounts()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_EventCollector(self))
        self.registry.register(_StateCollector(self))
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, process_resident_memory_bytes

    # -- hooks (hot path) ------------------------------------------------------------------------

    def task_polled(self, queue_name: str) -> None:
        d = self._poll
        d[queue_name] = d.get(queue_name, 0) + 1

    def task_queue_wait(self, t: Task, now: int) -> None:
        # conductor-oss TaskModel.getQueueWaitTime: from the callback's due time when there was one
        if t.callbackAfterSeconds > 0 and t.updateTime > 0:
            waited = now - (t.updateTime + t.callbackAfterSeconds * 1000)
        elif t.scheduledTime > 0:
            waited = now - t.scheduledTime
        else:
            return
        h = self._wait.get(t.taskDefName)
        if h is None:
            h = self._wait[t.taskDefName] = _Hist(len(DURATION_BUCKETS))
        seconds = max(0, waited) / 1000.0
        h.counts[bisect_left(DURATION_BUCKETS, seconds)] += 1
        h.total += seconds

    def task_ended(self, t: Task) -> None:
        status = t.status
        name = t.taskDefName
        if t.startTime > 0 and t.endTime >= t.startTime:
            key = (name, status)  # the enum member: its .value is a slow property; read at scrape
            h = self._exec.get(key)
            if h is None:
                h = self._exec[key] = _Hist(len(DURATION_BUCKETS))
            seconds = (t.endTime - t.startTime) / 1000.0
            h.counts[bisect_left(DURATION_BUCKETS, seconds)] += 1
            h.total += seconds
        if status is TaskStatus.TIMED_OUT:
            response = (t.reasonForIncompletion or "").startswith(RESPONSE_TIMEOUT_PREFIX)
            d = self._rto if response else self._timeout
            d[name] = d.get(name, 0) + 1

    def task_update_conflict(self, t: Task, wf: Workflow) -> None:
        status = t.status if t.status.terminal else wf.status
        key = (wf.definition.name, t.taskType, status)
        self._conflict[key] = self._conflict.get(key, 0) + 1

    def task_rate_limited(self, task_def_name: str) -> None:
        d = self._rate
        d[task_def_name] = d.get(task_def_name, 0) + 1

    def task_concurrency_limited(self, task_def_name: str) -> None:
        d = self._conc
        d[task_def_name] = d.get(task_def_name, 0) + 1

    def workflow_started(self, wf: Workflow) -> None:
        d = wf.definition
        key = (d.name, str(d.version))
        self._start[key] = self._start.get(key, 0) + 1

    def workflow_ended(self, wf: Workflow) -> None:
        name = wf.definition.name
        status = wf.status
        if status is WorkflowStatus.COMPLETED:
            h = self._wf_exec.get(name)
            if h is None:
                h = self._wf_exec[name] = _Hist(len(DURATION_BUCKETS))
            seconds = max(0, wf.endTime - wf.createTime) / 1000.0
            h.counts[bisect_left(DURATION_BUCKETS, seconds)] += 1
            h.total += seconds
            return
        key = (name, status)
        self._failure[key] = self._failure.get(key, 0) + 1

    def committed(self, seconds: float, changes: int) -> None:
        h = self._commit_h
        h.counts[bisect_left(COMMIT_BUCKETS, seconds)] += 1
        h.total += seconds
        g = self._group_h
        g.counts[bisect_left(GROUP_BUCKETS, changes)] += 1
        g.total += changes

    def folded(self, seconds: float) -> None:
        h = self._fold_h
        h.counts[bisect_left(COMMIT_BUCKETS, seconds)] += 1
        h.total += seconds

    def recovered(self, seconds: float) -> None:
        self.recovery_seconds = seconds

    def loop_lag(self, seconds: float) -> None:
        h = self._lag_h
        h.counts[bisect_left(PAUSE_BUCKETS, seconds)] += 1
        h.total += seconds

    def gc_pause(self, generation: int, seconds: float) -> None:
        # runs on whichever thread collects; collections never overlap, and the GIL keeps these
        # updates whole against a scrape on the loop
        h = self._gc_h[generation]
        h.counts[bisect_left(PAUSE_BUCKETS, seconds)] += 1
        h.total += seconds

    # -- scrape ----------------------------------------------------------------------------------

    async def exposition(self) -> bytes:
        """The text exposition of every metric (runs on the engine's loop: the collectors read the
        hooks' numbers and the engine's in-memory state, which only the loop changes)."""
        self._counts = await count_workflows(self.rt.workflows)
        return generate_latest(self.registry)


def _labels(key: Any) -> list[str]:
    """A series' label values from its dict key (a string, or a tuple for several labels; statuses
    are kept as enum members on the hot path)."""
    if isinstance(key, str):
        return [key]
    return [k.value if isinstance(k, Enum) else str(k) for k in key]


class _EventCollector(Collector):
    """The hooks' counters and histograms as ``prometheus_client`` metric families."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterable[Metric]:
        out: list[Metric] = []
        for attr, (name, doc, labels) in _COUNTERS.items():
            counter = CounterMetricFamily(name, doc, labels=list(labels))
            series: dict[Any, int] = getattr(self.m, attr)
            for key in sorted(series):
                counter.add_metric(_labels(key), series[key])
            out.append(counter)
        for attr, (name, doc, labels, bounds) in _HISTOGRAMS.items():
            hist = HistogramMetricFamily(name, doc, labels=list(labels))
            hseries: dict[Any, _Hist] = getattr(self.m, attr)
            for key in sorted(hseries):
                h = hseries[key]
                cumulative, buckets = 0, []
                for bound, n in zip((*map(floatToGoString, bounds), "+Inf"), h.counts, strict=True):
                    cumulative += n
                    buckets.append((bound, cumulative))
                hist.add_metric(_labels(key), buckets, h.total)
            out.append(hist)
        return out


class _StateCollector(Collector):
    """Gauges computed at scrape time from what the engine holds (nothing kept per request)."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterable[Metric]:
        return list(self._families())

    def _families(self) -> Iterator[Metric]:
        rt = self.m.rt
        depth = GaugeMetricFamily(
            "task_queue_depth",
            "Tasks waiting in a queue ([domain:]taskType), delayed ones included",
            labels=["taskType"],
        )
        sizes = dict.fromkeys(rt.meta.task_defs, 0)  # registered task types show 0 when drained
        sizes.update(rt.queue.sizes())
        for name in sorted(sizes):
            depth.add_metric([name], sizes[name])
        yield depth

        counts = self.m._counts  # counted by Metrics.exposition() just before
        running = GaugeMetricFamily(
            "workflow_running", "Non-terminal workflows (RUNNING or PAUSED), by name", labels=["workflowName"]
        )
        by_name = dict.fromkeys(rt.meta.workflow_defs, 0)  # registered workflows show 0 when none run
        by_name.update(counts.by_name)
        for name in sorted(by_name):
            running.add_metric([name], by_name[name])
        yield running
        by_status = GaugeMetricFamily(
            "conductor_lab_workflows", "Non-terminal workflows by status", labels=["status"]
        )
        by_status.add_metric(["RUNNING"], counts.running)
        by_status.add_metric(["PAUSED"], counts.paused)
        yield by_status

        state = commit_log_state(rt.store)
        if state:
            yield GaugeMetricFamily(
                "conductor_lab_journal_unfolded_records",
                "Group commits logged (durable) but not yet folded into the DuckDB tables",
                value=state.get("unfolded_records", 0),
            )
            yield GaugeMetricFamily(
                "conductor_lab_journal_fold_lag_seconds",
                "Seconds since the oldest unfolded commit was logged (0 when all are folded)",
                value=state.get("fold_lag_seconds", 0.0),
            )
            yield GaugeMetricFamily(
                "conductor_lab_store_size_bytes",
                "DuckDB file + its WAL + the commit log's segments",
                value=state.get("size_bytes", 0),
            )
        yield GaugeMetricFamily(
            "conductor_lab_recovery_seconds",
            "Loading definitions and running workflows at start",
            value=self.m.recovery_seconds,
        )
