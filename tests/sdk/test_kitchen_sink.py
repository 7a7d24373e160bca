"""Every task type in one blueprint (``tests/fixtures/blueprints/kitchen_sink.json``), run to
COMPLETED against a real server with workers from the official ``conductor-python`` SDK.

The SDK's ``TaskHandler`` starts its workers in spawned processes, so the worker functions live at
module level here and the handler runs in a child process (``run_workers``). No
``from __future__ import annotations`` in this module: the SDK passes the ``Task`` object only when
the parameter annotation is the real ``Task`` class.
"""

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from conductor.client.automator.task_handler import TaskHandler
from conductor.client.configuration.configuration import Configuration
from conductor.client.http.models.start_workflow_request import StartWorkflowRequest
from conductor.client.http.models.task import Task
from conductor.client.orkes.orkes_task_client import OrkesTaskClient
from conductor.client.orkes.orkes_workflow_client import OrkesWorkflowClient
from conductor.client.worker.worker import Worker

from tests.conftest import REPO_ROOT, ServerProcess, wait_until
from tests.scenario.harness import Story, summarize

pytestmark = pytest.mark.timeout(180)

#: every task type a workflow definition can use (conductor-oss TaskType, minus broker/AI tasks)
ALL_TYPES = frozenset({
    "SIMPLE", "SWITCH", "DECISION", "FORK_JOIN", "JOIN", "FORK_JOIN_DYNAMIC", "EXCLUSIVE_JOIN", "DYNAMIC",
    "DO_WHILE", "SUB_WORKFLOW", "START_WORKFLOW", "WAIT", "HUMAN", "TERMINATE", "SET_VARIABLE", "INLINE",
    "LAMBDA", "JSON_JQ_TRANSFORM", "HTTP", "EVENT", "NOOP",
})  # fmt: skip


# ------------------------------------------------------------------------------------------------
# workers (run by the SDK in its own processes)


def prepare(task: Task) -> dict:
    return {"skus": [{"sku": "a"}, {"sku": "b"}], "side": "right", "order": task.input_data["order"]}


def side(task: Task) -> dict:
    return {"handled": task.input_data["side"]}


def pack(task: Task) -> dict:
    return {"packed": task.input_data["sku"], "index": task.input_data["__index"]}


def ship(task: Task) -> dict:
    return {"carrier": "ACME-" + task.input_data["order"]}


def poke(task: Task) -> dict:
    return {"i": task.input_data["i"]}


def child_step(task: Task) -> dict:
    return {"says": "hello " + task.input_data["order"]}


WORKERS = {
    "ks_prepare": prepare,
    "ks_side": side,
    "ks_pack": pack,
    "ks_ship": ship,
    "ks_poke": poke,
    "ks_child_step": child_step,
}


def run_workers(api_url: str, suffix: str) -> None:
    """The SDK's TaskHandler with one worker per task type (names with the story's suffix) until
    stdin closes."""
    cfg = Configuration(server_api_url=api_url)
    workers = [
        Worker(task_definition_name=f"{name}_{suffix}", execute_function=fn, poll_interval=10, thread_count=2)
        for name, fn in WORKERS.items()
    ]
    handler = TaskHandler(workers=workers, configuration=cfg, scan_for_annotated_workers=False)
    handler.start_processes()
    try:
        sys.stdin.read()
    finally:
        handler.stop_processes()


# ------------------------------------------------------------------------------------------------
# the test


class PriceServer:
    """``GET /price/<order>`` -> ``{"price": 12.5, "order": <order>}`` on 127.0.0.1."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                order = self.path.rsplit("/", 1)[-1]
                data = json.dumps({"price": 12.5, "order": order}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def price_server() -> Iterator[PriceServer]:
    srv = PriceServer()
    try:
        yield srv
    finally:
        srv.close()


def test_kitchen_sink_runs_every_task_type_to_completed_with_sdk_workers(
    server: ServerProcess, http: httpx.Client, price_server: PriceServer
) -> None:
    story = Story(http)
    story.register("kitchen_sink")
    cfg = Configuration(server_api_url=server.api)
    workflows = OrkesWorkflowClient(cfg)
    tasks = OrkesTaskClient(cfg)

    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from tests.sdk.test_kitchen_sink import run_workers; "
         "run_workers(sys.argv[1], sys.argv[2])", server.api, story.uid],
        cwd=REPO_ROOT, stdin=subprocess.PIPE,
    )  # fmt: skip
    try:
        wid = workflows.start_workflow(
            StartWorkflowRequest(
                name=story.name("kitchen_sink"),
                version=1,
                correlation_id="kitchen",
                input={"order": "o-1", "amount": 20, "base": price_server.base, "shipper": story.name("ks_ship")},
            )
        )

        # the HUMAN task waits for a person: the test approves it through the SDK, by reference name
        def human_waiting() -> bool:
            wf = workflows.get_workflow(wid, include_tasks=True)
            assert wf.status == "RUNNING", (wf.status, wf.reason_for_incompletion)
            return any(t.reference_task_name == "approve" and t.status == "IN_PROGRESS" for t in wf.tasks)

        wait_until(human_waiting, timeout=60, interval=0.05, what="the HUMAN task")
        tasks.update_task_by_ref_name(wid, "approve", "COMPLETED", {"approved": True})
        wf = story.wait_workflow(wid, "COMPLETED", timeout=60)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    spawned = wf["output"]["spawned"]
    child_id = {t["referenceTaskName"]: t for t in wf["tasks"]}["child"]["subWorkflowId"]
    finish = wf["tasks"][-1]
    n = story.name
    pack0, pack1 = f"_{n('ks_pack')}_0", f"_{n('ks_pack')}_1"  # the dynamic fork's branch references
    assert wf["output"] == {
        "order": "o-1",
        "stage": "prepared",
        "size": "big",
        "discounted": 18,
        "side": "right",
        "price": 12.5,
        "reshaped": {"count": 2, "first": "a"},
        "announced": f"conductor:{story.name('kitchen_sink')}:announce",
        "approved": True,
        "packed": {pack0: {"packed": "a", "index": 0}, pack1: {"packed": "b", "index": 1}},
        "shipped": "ACME-o-1",
        "pokes": 2,
        "child": "hello o-1",
        "spawned": spawned,
    }  # fmt: skip
    assert wf["reasonForIncompletion"] == f"Workflow is COMPLETED by TERMINATE task: {finish['taskId']}"
    assert wf["correlationId"] == "kitchen"
    assert wf["variables"] == {"stage": "prepared", "skus": [{"sku": "a"}, {"sku": "b"}]}

    assert summarize(wf["tasks"]) == [
        ("prepare", n("ks_prepare"), "COMPLETED"),
        ("remember", "SET_VARIABLE", "COMPLETED"),
        ("classify", "INLINE", "COMPLETED"),
        ("by_size", "SWITCH", "COMPLETED"),
        ("discount", "LAMBDA", "COMPLETED"),
        ("route", "DECISION", "COMPLETED"),
        ("right", n("ks_side"), "COMPLETED"),
        ("route_join", "EXCLUSIVE_JOIN", "COMPLETED"),
        ("parallel", "FORK", "COMPLETED"),
        ("fetch", "HTTP", "COMPLETED"),
        ("reshape", "JSON_JQ_TRANSFORM", "COMPLETED"),
        ("cool_down", "WAIT", "COMPLETED"),
        ("announce", "EVENT", "COMPLETED"),
        ("approve", "HUMAN", "COMPLETED"),
        ("parallel_join", "JOIN", "COMPLETED"),
        ("fan_out", "FORK", "COMPLETED"),
        (pack0, n("ks_pack"), "COMPLETED"),
        (pack1, n("ks_pack"), "COMPLETED"),
        ("fan_in", "JOIN", "COMPLETED"),
        ("dynamic", n("ks_ship"), "COMPLETED"),
        ("retries", "DO_WHILE", "COMPLETED"),
        ("poke__1", n("ks_poke"), "COMPLETED"),
        ("poke__2", n("ks_poke"), "COMPLETED"),
        ("child", "SUB_WORKFLOW", "COMPLETED"),
        ("spawn", "START_WORKFLOW", "COMPLETED"),
        ("nothing", "NOOP", "COMPLETED"),
        ("finish", "TERMINATE", "COMPLETED"),
    ]
    # every task type of the blueprint ran (by the definition node each task came from)
    ran = {t["workflowTask"]["type"] for t in wf["tasks"]}
    assert ran == ALL_TYPES, sorted(ALL_TYPES ^ ran)
    # the worker tasks were polled and completed by the SDK's workers
    for t in wf["tasks"]:
        if t["workflowTask"]["type"] in ("SIMPLE", "DYNAMIC"):
            assert t["workerId"] and t["pollCount"] >= 1, t
    # waited at least its duration
    wait = {t["referenceTaskName"]: t for t in wf["tasks"]}["cool_down"]
    assert wait["endTime"] - wait["scheduledTime"] >= 1000

    child = workflows.get_workflow(child_id, include_tasks=True)
    assert child.status == "COMPLETED" and child.parent_workflow_id == wid
    assert [(t.reference_task_name, t.status) for t in child.tasks] == [("child_step", "COMPLETED")]
    started = story.wait_workflow(spawned, "COMPLETED")
    assert started.get("parentWorkflowId") is None  # fire and forget: no parent link
    assert started["output"] == {"said": f"child of {wid}"}
    assert started["correlationId"] == "kitchen"  # START_WORKFLOW inherits the correlation id
