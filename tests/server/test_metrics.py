"""``GET /metrics``: Prometheus text from a real server, scraped while workflows run.

Counters are checked by exact amounts on task types and workflow names unique to each test
(the session server is shared), gauges against the REST API that reports the same state.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ServerProcess, wait_until
from tests.server.util import batch_poll, get_workflow, register_chain, simple_task, start, uid, workflow_def

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: ServerProcess, headers: dict[str, str] | None = None) -> Samples:
    r = httpx.get(server.url + "/metrics", headers=headers or {}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain"), r.headers
    out: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (a counter never incremented)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def queue_sizes(http: httpx.Client, *task_types: str) -> dict[str, int]:
    r = http.get("/tasks/queue/sizes", params=[("taskType", t) for t in task_types])
    assert r.status_code == 200, r.text
    return {k: int(v) for k, v in r.json().items()}


def register_defs(http: httpx.Client, *defs: dict[str, Any]) -> None:
    r = http.post("/metadata/taskdefs", json=list(defs))
    assert r.status_code == 200, r.text


def update(http: httpx.Client, task: dict[str, Any], status: str) -> None:
    body = {"workflowInstanceId": task["workflowInstanceId"], "taskId": task["taskId"], "status": status}
    r = http.post("/tasks", json=body)
    assert r.status_code == 200, r.text


class Worker:
    """A worker thread: batch-polls its task types and answers each task (COMPLETED, or FAILED for
    the types in ``fail``), counting its poll requests per type."""

    def __init__(self, api: str, task_types: list[str], fail: set[str]) -> None:
        self.api = api
        self.task_types = task_types
        self.fail = fail
        self.polls = dict.fromkeys(task_types, 0)
        self.done = dict.fromkeys(task_types, 0)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Worker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive()

    def _run(self) -> None:
        with httpx.Client(base_url=self.api, timeout=30) as c:
            while not self._stop.is_set():
                for tt in self.task_types:
                    try:
                        tasks = batch_poll(c, tt, count=5, timeout=20, workerid="metrics-worker")
                        self.polls[tt] += 1
                        for task in tasks:
                            update(c, task, "FAILED" if tt in self.fail else "COMPLETED")
                            self.done[tt] += 1
                    except Exception as exc:  # reported by the test, not swallowed
                        self.errors.append(repr(exc))
                        return


def test_counters_move_by_the_right_amounts_and_queue_depth_matches_the_api(
    http: httpx.Client, server: ServerProcess
) -> None:
    wf, wf_fail = uid("m_wf"), uid("m_wffail")
    t1, t2, tf = uid("m_a"), uid("m_b"), uid("m_f")
    register_defs(http, {"name": tf, "retryCount": 0})
    register_chain(http, wf, [t1, t2])
    register_chain(http, wf_fail, [tf])
    before = scrape(server)
    commits_before = value(before, "conductor_lab_commit_latency_seconds_count")

    ids = [start(http, wf, {"i": i}) for i in range(6)]
    failing = [start(http, wf_fail) for _ in range(2)]

    # scraped while they run, no worker yet: the gauges are the engine's state
    s = scrape(server)
    sizes = queue_sizes(http, t1, t2, tf)
    assert sizes == {t1: 6, t2: 0, tf: 2}
    for tt in (t1, t2, tf):
        assert value(s, "task_queue_depth", taskType=tt) == sizes[tt], tt
    assert value(s, "workflow_running", workflowName=wf) == 6
    assert value(s, "workflow_running", workflowName=wf_fail) == 2
    assert value(s, "workflow_start_success_total", workflowName=wf, version="1") == 6
    assert value(s, "workflow_start_success_total", workflowName=wf_fail, version="1") == 2
    assert value(s, "conductor_lab_commit_latency_seconds_count") >= commits_before + 1
    assert value(s, "conductor_lab_workflows", status="RUNNING") >= 8

    # a worker drains them; scraped while it runs
    with Worker(server.api, [t1, t2, tf], fail={tf}) as worker:

        def drained() -> bool:
            s = scrape(server)
            finished = value(s, "workflow_execution_seconds_count", workflowName=wf)
            failed = value(s, "workflow_failure_total", workflowName=wf_fail, status="FAILED")
            assert 0 <= finished <= 6 and 0 <= failed <= 2
            assert value(s, "workflow_running", workflowName=wf) == 6 - finished
            assert not worker.errors, worker.errors
            return finished == 6 and failed == 2

        wait_until(drained, timeout=30, what="every workflow counted as ended, scraped while the worker runs")
    assert not worker.errors, worker.errors
    assert worker.done == {t1: 6, t2: 6, tf: 2}

    s = scrape(server)
    for tt in (t1, t2, tf):
        assert value(s, "task_poll_total", taskType=tt) == worker.polls[tt], tt
        assert value(s, "task_queue_depth", taskType=tt) == 0 == queue_sizes(http, tt)[tt]
        assert value(s, "task_queue_wait_seconds_count", taskType=tt) == (2 if tt == tf else 6)
    assert value(s, "task_execution_seconds_count", taskType=t1, status="COMPLETED") == 6
    assert value(s, "task_execution_seconds_count", taskType=t2, status="COMPLETED") == 6
    assert value(s, "task_execution_seconds_count", taskType=tf, status="FAILED") == 2
    assert value(s, "workflow_execution_seconds_count", workflowName=wf) == 6
    assert value(s, "workflow_failure_total", workflowName=wf_fail, status="FAILED") == 2
    assert value(s, "workflow_failure_total", workflowName=wf, status="FAILED") == 0
    assert value(s, "workflow_running", workflowName=wf) == 0
    assert (
        value(s, "conductor_lab_commit_group_size_sum")
        >= value(s, "conductor_lab_commit_group_size_count")
        > 0
    )
    assert value(s, "conductor_lab_store_size_bytes") > 0
    assert value(s, "conductor_lab_journal_unfolded_records") >= 0
    for wid in ids:
        assert get_workflow(http, wid, include_tasks=False)["status"] == "COMPLETED"
    for wid in failing:
        assert get_workflow(http, wid, include_tasks=False)["status"] == "FAILED"

    # an update of a finished task is a conflict (ignored, counted)
    task = get_workflow(http, ids[0])["tasks"][0]
    update(http, task, "COMPLETED")
    s = scrape(server)
    assert value(s, "task_update_conflict_total", workflowName=wf, taskType=t1, status="COMPLETED") == 1



def test_the_event_loop_lag_and_gc_pauses_are_exposed(http: httpx.Client, server: ServerProcess) -> None:
    """The loop watch's timer ticks every 0.1 s on the server's loop; collections are timed by
    generation (three series, present from the start)."""
    first = value(scrape(server), "conductor_lab_event_loop_lag_seconds_count")

    def ticked() -> Samples | None:
        s = scrape(server)
        return s if value(s, "conductor_lab_event_loop_lag_seconds_count") >= first + 3 else None

    s = wait_until(ticked, timeout=30, what="three more lag ticks")
    assert s is not None
    assert value(s, "conductor_lab_event_loop_lag_seconds_bucket", le="+Inf") == value(
        s, "conductor_lab_event_loop_lag_seconds_count"
    )
    assert value(s, "conductor_lab_event_loop_lag_seconds_sum") >= 0
    for gen in ("0", "1", "2"):
        assert ("conductor_lab_gc_pause_seconds_count", frozenset({("generation", gen)})) in s, gen
    # the server collects as it serves: a few hundred workflows allocate enough for gen-0 passes
    wf, t = uid("m_gcwf"), uid("m_gct")
    register_chain(http, wf, [t])
    before = value(s, "conductor_lab_gc_pause_seconds_count", generation="0")

    def collected() -> bool:
        for i in range(100):
            start(http, wf, {"i": i, "pad": "x" * 200})
        return value(scrape(server), "conductor_lab_gc_pause_seconds_count", generation="0") > before

    wait_until(collected, timeout=60, what="a young-generation collection timed while workflows start")


def test_timeouts_and_limits_are_counted(http: httpx.Client, server: ServerProcess) -> None:
    t_resp, t_poll, t_rate, t_conc = uid("m_resp"), uid("m_pollto"), uid("m_rate"), uid("m_conc")
    register_defs(
        http,
        {"name": t_resp, "retryCount": 0, "responseTimeoutSeconds": 1},
        {"name": t_poll, "retryCount": 0, "pollTimeoutSeconds": 1},
        {"name": t_rate, "rateLimitPerFrequency": 1, "rateLimitFrequencyInSeconds": 600},
        {"name": t_conc, "concurrentExecLimit": 1},
    )
    names = {}
    for tt in (t_resp, t_poll, t_rate, t_conc):
        names[tt] = uid("m_wf")
        r = http.post("/metadata/workflow", json=workflow_def(names[tt], [simple_task(tt)]))
        assert r.status_code == 200, r.text
    resp_wf = start(http, names[t_resp])
    poll_wf = start(http, names[t_poll])
    for tt in (t_rate, t_conc):
        start(http, names[tt])
        start(http, names[tt])

    assert len(batch_poll(http, t_resp, count=1, timeout=0)) == 1  # taken, never answered
    for tt in (t_rate, t_conc):  # the first is delivered, the second held back at each poll
        assert len(batch_poll(http, tt, count=2, timeout=0)) == 1
        assert batch_poll(http, tt, count=2, timeout=0) == []

    s = scrape(server)
    assert value(s, "task_rate_limited_total", taskType=t_rate) == 2
    assert value(s, "task_concurrent_execution_limited_total", taskType=t_conc) == 2
    assert value(s, "task_rate_limited_total", taskType=t_conc) == 0

    def timed_out() -> Samples | None:
        s = scrape(server)
        done = value(s, "task_response_timeout_total", taskType=t_resp) and value(
            s, "task_timeout_total", taskType=t_poll
        )
        return s if done else None

    s = wait_until(timed_out, timeout=15, what="response timeout and poll timeout counted")
    assert value(s, "task_response_timeout_total", taskType=t_resp) == 1
    assert value(s, "task_timeout_total", taskType=t_resp) == 0
    assert value(s, "task_timeout_total", taskType=t_poll) == 1
    assert value(s, "task_response_timeout_total", taskType=t_poll) == 0
    assert value(s, "task_execution_seconds_count", taskType=t_resp, status="TIMED_OUT") == 1
    assert value(s, "workflow_failure_total", workflowName=names[t_resp], status="TIMED_OUT") == 1
    assert get_workflow(http, resp_wf, include_tasks=False)["status"] == "TIMED_OUT"
    assert get_workflow(http, poll_wf, include_tasks=False)["status"] == "TIMED_OUT"


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp("metrics-token")
    with ServerProcess(tmp / "t.duckdb", ["--token", "s3cret"], log_dir=tmp) as proc:
        yield proc


def test_metrics_need_the_token_when_the_server_has_one(token_server: ServerProcess) -> None:
    url = token_server.url
    r = httpx.get(url + "/metrics")
    assert r.status_code == 401 and r.json()["status"] == 401
    assert httpx.get(url + "/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(url + "/api/admin/status").status_code == 401
    s = scrape(token_server, {"Authorization": "Bearer s3cret"})
    assert value(s, "conductor_lab_recovery_seconds") >= 0
    assert ("conductor_lab_workflows", frozenset({("status", "RUNNING")})) in s
    assert httpx.get(url + "/api/admin/status", headers={"X-Authorization": "s3cret"}).status_code == 200
    assert httpx.get(url + "/health").status_code == 200  # still open


def test_no_metrics_answers_404_and_status_still_works(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "n.duckdb", ["--no-metrics"], log_dir=tmp_path) as proc:
        r = httpx.get(proc.url + "/metrics")
        assert r.status_code == 404 and "--no-metrics" in r.json()["message"]
        with httpx.Client(base_url=proc.api, timeout=30) as c:
            name, t = uid("nm_wf"), uid("nm_t")
            register_chain(c, name, [t])
            start(c, name)
            doc = c.get("/admin/status").json()
        assert doc["metrics"] is False
        assert doc["workflows"]["running"] == 1 and doc["queues"] == {t: 1}
        assert doc["commit"]["samples"] >= 1 and doc["commit"]["p50Ms"] > 0
