"""REST: limits and routing applied at poll time.

``rateLimitPerFrequency`` / ``rateLimitFrequencyInSeconds`` (a sliding window, as conductor-oss's
Redis store), ``concurrentExecLimit`` (IN_PROGRESS tasks of a definition, across workflows and
domains), task domains (``taskToDomain`` with ``*``, fallback lists, ``NO_DOMAIN``, active
workers) and workflow priority. Times that matter are the server's own (``startTime`` /
``endTime`` of the delivered tasks), measured rather than assumed.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from tests.conftest import ServerProcess, wait_until
from tests.server.util import batch_poll, get_workflow, simple_task, uid, workflow_def


def register(http: httpx.Client, task_def: dict[str, Any], wf_name: str, tasks: list[dict[str, Any]]) -> None:
    r = http.post("/metadata/taskdefs", json=[task_def])
    assert r.status_code == 200, r.text
    r = http.post("/metadata/workflow", json=workflow_def(wf_name, tasks))
    assert r.status_code == 200, r.text


def start(http: httpx.Client, name: str, **request: Any) -> str:
    """``POST /workflow`` with a StartWorkflowRequest (``priority``, ``taskToDomain`` ...)."""
    r = http.post("/workflow", json={"name": name, **request})
    assert r.status_code == 200, r.text
    return r.text


def update(http: httpx.Client, task: dict[str, Any], status: str, **extra: Any) -> None:
    body = {"workflowInstanceId": task["workflowInstanceId"], "taskId": task["taskId"], "status": status, **extra}
    r = http.post("/tasks", json=body)
    assert r.status_code == 200, r.text


def poll(http: httpx.Client, task_type: str, count: int = 1, timeout: int = 0, **params: Any) -> list[Any]:
    return batch_poll(http, task_type, count=count, timeout=timeout, workerid="w", **params)


def queue_size(http: httpx.Client, task_type: str, domain: str | None = None) -> int:
    params = {"taskType": task_type, **({"domain": domain} if domain else {})}
    r = http.get("/tasks/queue/size", params=params)
    assert r.status_code == 200, r.text
    return int(r.json())


def max_overlap(intervals: list[tuple[int, int]]) -> int:
    """Most intervals open at one instant; an end at t comes before a start at t."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    level = best = 0
    for _, step in events:
        level += step
        best = max(best, level)
    return best


# ------------------------------------------------------------------------------------------------
# rateLimitPerFrequency


def test_rate_limit_is_a_sliding_window_never_exceeded(http: httpx.Client) -> None:
    t, wf = uid("rl"), uid("wf_rl")
    register(http, {"name": t, "rateLimitPerFrequency": 5, "rateLimitFrequencyInSeconds": 1}, wf, [simple_task(t)])
    for _ in range(18):
        start(http, wf)
    assert queue_size(http, t) == 18

    t0 = time.monotonic()
    first = poll(http, t, count=10)
    assert len(first) == 5, "a fresh window lets exactly rateLimitPerFrequency tasks through"
    delivered = list(first)
    began = time.monotonic()
    delivered += poll(http, t, count=10, timeout=2000)  # held back (or, on a slow machine, refilled)
    elapsed = time.monotonic() - began
    assert elapsed < 1.5, f"a rate-limited poll waited {elapsed:.2f}s instead of answering at once"
    for task in delivered:
        update(http, task, "COMPLETED")

    # Aggressive polling for about 2.3 s more: the window refills twice.
    deadline = time.monotonic() + 2.3
    while time.monotonic() < deadline:
        got = poll(http, t, count=10)
        for task in got:
            update(http, task, "COMPLETED")
        delivered += got
        if not got:
            time.sleep(0.005)

    assert all(task["pollCount"] == 1 for task in delivered)
    starts = sorted(task["startTime"] for task in delivered)
    for i in range(len(starts) - 5):  # any 6 deliveries span at least the window (1000 ms)
        assert starts[i + 5] - starts[i] >= 1000, (i, starts)
    span = time.monotonic() - t0  # the server's deliveries all fall inside this span
    assert len(starts) >= 10, starts  # the window refilled at least once in ~2.5 s
    assert len(starts) <= 5 * (int(span) + 1), (span, starts)
    assert queue_size(http, t) == 18 - len(starts)  # the held tasks stayed queued


def test_rate_limit_counts_every_worker_and_domain(http: httpx.Client) -> None:
    t, wf, dom = uid("rl2"), uid("wf_rl2"), uid("d")
    register(http, {"name": t, "rateLimitPerFrequency": 2, "rateLimitFrequencyInSeconds": 30}, wf, [simple_task(t)])
    start(http, wf, taskToDomain={t: dom})
    start(http, wf)
    start(http, wf)
    assert len(poll(http, t, count=1, domain=dom)) == 1
    assert len(poll(http, t, count=5)) == 1  # the window holds 2 for the definition, whatever the queue
    assert poll(http, t, count=5) == []
    assert queue_size(http, t) == 1


# ------------------------------------------------------------------------------------------------
# concurrentExecLimit


def test_concurrent_exec_limit_never_exceeded_by_eight_pollers(http: httpx.Client, server: ServerProcess) -> None:
    t, wf = uid("cl"), uid("wf_cl")
    register(http, {"name": t, "concurrentExecLimit": 2}, wf, [simple_task(t)])
    ids = [start(http, wf) for _ in range(12)]
    lock = threading.Lock()
    state = {"now": 0, "max": 0, "done": 0}
    errors: list[BaseException] = []
    stop = time.monotonic() + 30

    def worker(n: int) -> None:
        try:
            with httpx.Client(base_url=server.api, timeout=30) as c:
                while time.monotonic() < stop:
                    with lock:
                        if state["done"] >= len(ids):
                            return
                    got = batch_poll(c, t, count=2, timeout=100, workerid=f"p{n}")
                    if not got:
                        time.sleep(0.005)  # the worker's poll interval
                        continue
                    with lock:  # in progress from the answer until just before the update
                        state["now"] += len(got)
                        state["max"] = max(state["max"], state["now"])
                    time.sleep(0.05)  # the work
                    for task in got:
                        with lock:
                            state["now"] -= 1
                        update(c, task, "COMPLETED")
                        with lock:
                            state["done"] += 1
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(40)
    assert not errors, errors
    assert state["done"] == len(ids)
    assert 1 <= state["max"] <= 2, state
    # The server's own record: IN_PROGRESS intervals [startTime, endTime] of all 12 tasks.
    intervals = []
    for wid in ids:
        wfj = get_workflow(http, wid)
        assert wfj["status"] == "COMPLETED"
        (task,) = wfj["tasks"]
        assert task["pollCount"] == 1
        intervals.append((task["startTime"], task["endTime"]))
    assert max_overlap(intervals) <= 2, sorted(intervals)


def test_concurrent_exec_limit_caps_a_batch_and_answers_at_once(http: httpx.Client) -> None:
    t, wf = uid("cl2"), uid("wf_cl2")
    register(http, {"name": t, "concurrentExecLimit": 2}, wf, [simple_task(t)])
    ids = [start(http, wf) for _ in range(4)]
    got = poll(http, t, count=5)
    assert [task["workflowInstanceId"] for task in got] == ids[:2], "queue order is kept"
    began = time.monotonic()
    assert poll(http, t, count=5, timeout=3000) == []
    assert time.monotonic() - began < 1.5, "a poll held back by the limit answers at once"
    assert queue_size(http, t) == 2
    update(http, got[0], "COMPLETED")
    again = poll(http, t, count=5)
    assert [task["workflowInstanceId"] for task in again] == [ids[2]]


def test_concurrent_exec_limit_frees_on_every_way_out_of_in_progress(http: httpx.Client) -> None:
    t, wf = uid("cl3"), uid("wf_cl3")
    register(http, {"name": t, "concurrentExecLimit": 1, "retryCount": 0}, wf, [simple_task(t)])
    w1, w2, w3, w4, w5 = (start(http, wf) for _ in range(5))

    (a,) = poll(http, t, count=5)
    assert a["workflowInstanceId"] == w1
    assert poll(http, t) == []
    update(http, a, "FAILED", reasonForIncompletion="boom")  # failed (no retries)
    (b,) = poll(http, t, count=5)
    assert b["workflowInstanceId"] == w2
    assert poll(http, t) == []
    update(http, b, "IN_PROGRESS", callbackAfterSeconds=60)  # back to SCHEDULED for a minute
    (c,) = poll(http, t, count=5)
    assert c["workflowInstanceId"] == w3
    assert poll(http, t) == []
    r = http.delete(f"/workflow/{w3}", params={"reason": "stop"})  # workflow terminated: task CANCELED
    assert r.status_code == 200, r.text
    (d,) = poll(http, t, count=5)
    assert d["workflowInstanceId"] == w4
    assert poll(http, t) == []
    r = http.delete(f"/workflow/{w4}/remove", params={"archiveWorkflow": "false"})  # removed while running
    assert r.status_code == 200, r.text
    (e,) = poll(http, t, count=5)
    assert e["workflowInstanceId"] == w5
    update(http, e, "COMPLETED")
    assert get_workflow(http, w1)["status"] == "FAILED"
    assert get_workflow(http, w3)["tasks"][0]["status"] == "CANCELED"
    assert get_workflow(http, w5)["status"] == "COMPLETED"


def test_concurrent_exec_limit_frees_on_response_timeout(http: httpx.Client) -> None:
    t, wf = uid("cl4"), uid("wf_cl4")
    register(
        http, {"name": t, "concurrentExecLimit": 1, "retryCount": 0, "responseTimeoutSeconds": 1}, wf, [simple_task(t)]
    )
    w1, w2 = start(http, wf), start(http, wf)
    (a,) = poll(http, t, count=2)
    assert a["workflowInstanceId"] == w1
    assert poll(http, t) == []
    began = time.monotonic()
    (b,) = wait_until(lambda: poll(http, t, count=2), timeout=10, what="the slot freed by the response timeout")
    assert b["workflowInstanceId"] == w2
    assert time.monotonic() - began > 0.3  # it really waited for the lease of the first one
    assert get_workflow(http, w1)["tasks"][0]["status"] == "TIMED_OUT"
    update(http, b, "COMPLETED")


def test_concurrent_exec_limit_counts_across_domains(http: httpx.Client) -> None:
    t, wf, dom = uid("cl5"), uid("wf_cl5"), uid("d")
    register(http, {"name": t, "concurrentExecLimit": 1}, wf, [simple_task(t)])
    in_domain = start(http, wf, taskToDomain={t: dom})
    plain = start(http, wf)
    (a,) = poll(http, t, domain=dom)
    assert a["workflowInstanceId"] == in_domain and a["domain"] == dom
    assert poll(http, t) == []  # another queue, the same definition
    update(http, a, "COMPLETED")
    (b,) = poll(http, t)
    assert b["workflowInstanceId"] == plain
    update(http, b, "COMPLETED")


# ------------------------------------------------------------------------------------------------
# task domains


def test_task_to_domain_specific_key_star_and_system_tasks(http: httpx.Client) -> None:
    t1, t2, wf = uid("dt1"), uid("dt2"), uid("wf_dom")
    d_star, d_spec = uid("dstar"), uid("dspec")
    for t in (t1, t2):
        assert http.post("/metadata/taskdefs", json=[{"name": t}]).status_code == 200
    tasks = [
        simple_task(t1),
        {"name": "sv", "taskReferenceName": "sv", "type": "SET_VARIABLE", "inputParameters": {"x": 1}},
        simple_task(t2),
    ]
    assert http.post("/metadata/workflow", json=workflow_def(wf, tasks)).status_code == 200
    wid = start(http, wf, taskToDomain={"*": d_star, t2: d_spec})

    assert poll(http, t1) == [], "a domain-less poll never sees a task routed to a domain"
    assert queue_size(http, t1) == 0 and queue_size(http, t1, d_star) == 1
    (a,) = poll(http, t1, domain=d_star)
    assert a["domain"] == d_star and a["workflowInstanceId"] == wid
    update(http, a, "COMPLETED")
    assert poll(http, t2, domain=d_star) == [], "the specific key overrides *"
    (b,) = wait_until(lambda: poll(http, t2, domain=d_spec), timeout=5)
    assert b["domain"] == d_spec
    update(http, b, "COMPLETED")
    wfj = get_workflow(http, wid)
    assert wfj["status"] == "COMPLETED"
    sv = next(x for x in wfj["tasks"] if x["referenceTaskName"] == "sv")
    assert sv.get("domain") is None, "system tasks are never given a domain"


def test_fallback_list_picks_the_first_active_domain_else_the_last(http: httpx.Client) -> None:
    t, wf = uid("df"), uid("wf_df")
    register(http, {"name": t}, wf, [simple_task(t)])
    d_a, d_b, d_c = uid("da"), uid("db"), uid("dc")
    assert poll(http, t, domain=d_b) == []  # d_b's worker polls (an empty poll): d_b is active
    active = start(http, wf, taskToDomain={t: f"{d_a}, {d_b},{d_c}"})
    inactive = start(http, wf, taskToDomain={t: f"{uid('dx')},{d_c}"})
    assert queue_size(http, t, d_b) == 1 and queue_size(http, t, d_c) == 1 and queue_size(http, t, d_a) == 0
    (a,) = poll(http, t, domain=d_b)
    assert (a["workflowInstanceId"], a["domain"]) == (active, d_b)
    (b,) = poll(http, t, domain=d_c)
    assert (b["workflowInstanceId"], b["domain"]) == (inactive, d_c)


def test_no_domain_means_the_default_queue(http: httpx.Client) -> None:
    t, wf = uid("dn"), uid("wf_dn")
    register(http, {"name": t}, wf, [simple_task(t)])
    d_z = uid("dz")
    first = start(http, wf, taskToDomain={t: f"{d_z},NO_DOMAIN"})  # d_z has no worker yet
    lower = start(http, wf, taskToDomain={"*": uid("dstar"), t: "no_domain"})  # any case; overrides *
    got = poll(http, t, count=5)
    assert [x["workflowInstanceId"] for x in got] == [first, lower]
    assert all(x.get("domain") is None for x in got)
    assert poll(http, t, domain=d_z) == []  # now d_z's worker is active ...
    routed = start(http, wf, taskToDomain={t: f"{d_z},NO_DOMAIN"})
    assert poll(http, t) == []  # ... so the task goes there
    (c,) = poll(http, t, domain=d_z)
    assert (c["workflowInstanceId"], c["domain"]) == (routed, d_z)


# ------------------------------------------------------------------------------------------------
# priority


def test_higher_priority_first_fifo_within_a_priority(http: httpx.Client) -> None:
    t, wf = uid("pr"), uid("wf_pr")
    register(http, {"name": t}, wf, [simple_task(t)])
    low = start(http, wf, priority=1)
    mid1 = start(http, wf, priority=50)
    high = start(http, wf, priority=99)
    mid2 = start(http, wf, priority=50)
    zero = start(http, wf)
    mid3 = start(http, wf, priority=50)
    got = poll(http, t, count=10)
    assert [x["workflowInstanceId"] for x in got] == [high, mid1, mid2, mid3, low, zero]
    assert [x["workflowPriority"] for x in got] == [99, 50, 50, 50, 1, 0]


def test_priority_order_survives_a_limit(http: httpx.Client) -> None:
    t, wf = uid("prl"), uid("wf_prl")
    register(http, {"name": t, "concurrentExecLimit": 1}, wf, [simple_task(t)])
    low = start(http, wf, priority=1)
    high = start(http, wf, priority=90)
    (a,) = poll(http, t, count=5)
    assert a["workflowInstanceId"] == high
    late = start(http, wf, priority=50)  # arrives while the head is held back
    assert poll(http, t, count=5) == []
    update(http, a, "COMPLETED")
    (b,) = poll(http, t, count=5)
    assert b["workflowInstanceId"] == late
    update(http, b, "COMPLETED")
    (c,) = poll(http, t, count=5)
    assert c["workflowInstanceId"] == low
