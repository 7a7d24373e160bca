"""Event handlers against a real Executor on a real DuckDB file, with ``publish`` called directly.

What the EVENT task will do (publish one message per task) is simulated by calling
``executor.events.publish(queue, message_id, payload)`` on the loop; processing is asynchronous,
so every test waits for it with a deadline (``settle``), never with a bare sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from conductor_lab.engine.events import EventService, expand
from conductor_lab.engine.executor import Executor
from conductor_lab.engine.store.duckdb import DuckDBStore
from conductor_lab.errors import Conflict, InvalidInput, MalformedBody, NotFound

EVENT = "conductor:source_wf:notify_ref"


def run(tmp_path: Path, story: Callable[[Executor], Awaitable[None]]) -> None:
    async def main() -> None:
        ex = Executor(DuckDBStore(tmp_path / "c.duckdb"))
        await ex.start()
        try:
            await story(ex)
        finally:
            await ex.close()

    asyncio.run(main())


def handler(
    name: str, *actions: dict[str, Any], event: str = EVENT, active: bool = True, **extra: Any
) -> dict[str, Any]:
    return {"name": name, "event": event, "active": active, "actions": list(actions), **extra}


def start_action(workflow: str, **params: Any) -> dict[str, Any]:
    return {"action": "start_workflow", "start_workflow": {"name": workflow, **params}}


def task_action(kind: str, **details: Any) -> dict[str, Any]:
    return {"action": kind, kind: details}


async def executions(ex: Executor, name: str) -> list[dict[str, Any]]:
    """The handler's execution records once processing has settled, by (message, action index)."""
    await ex.events.settle()
    return sorted(await ex.events.get_executions(name), key=lambda r: (r["created"], r["id"]))


async def register_chain(ex: Executor, name: str, *refs: str, retry_count: int = 0) -> None:
    await ex.register_task_defs(
        [{"name": r, "retryCount": retry_count, "retryDelaySeconds": 0} for r in refs]
    )
    await ex.register_workflow_def(
        {"name": name, "tasks": [{"name": r, "taskReferenceName": r} for r in refs]}
    )


async def workflow_json(ex: Executor, workflow_id: str) -> dict[str, Any]:
    """The workflow as a client sees it (Conductor's JSON)."""
    return (await ex.get_workflow(workflow_id)).to_json()


def task_of(wf: dict[str, Any], ref: str) -> dict[str, Any]:
    return [t for t in wf["tasks"] if t["referenceTaskName"] == ref][-1]


# ---------------------------------------------------------------------- actions


def test_start_workflow_substitutes_input_and_sets_event(tmp_path: Path) -> None:
    async def story(ex: Executor) -> None:
        await register_chain(ex, "target", "job")
        await ex.events.add_handler(
            handler(
                "starter",
                start_action(
                    "target",
                    input={
                        "orderId": "${orderId}",
                        "label": "order ${orderId}",
                        "fixed": 1,
                        "items": "${items}",
                    },
                    correlationId="${orderId}",
                ),
            )
        )
        payload = {"orderId": 42, "items": [1, 2], "taskToDomain": {"job": "mydomain"}}
        ex.events.publish(EVENT, "msg-1", payload)
        payload["orderId"] = 99  # the message is a copy: later changes do not reach it
        [rec] = await executions(ex, "starter")
        assert rec["id"] == "msg-1_0" and rec["messageId"] == "msg-1" and rec["name"] == "starter"
        assert rec["event"] == EVENT and rec["action"] == "start_workflow" and rec["status"] == "COMPLETED"
        wid = rec["output"]["workflowId"]
        wf = await workflow_json(ex, wid)
        assert wf["input"] == {
            "orderId": 42,
            "label": "order 42",
            "fixed": 1,
            "items": [1, 2],
            "conductor.event.messageId": "msg-1",
            "conductor.event.name": EVENT,
        }
        assert wf["event"] == EVENT
        assert wf["correlationId"] == "42"
        assert wf["taskToDomain"] == {"job": "mydomain"}  # from the payload: the action has none
        assert wf["status"] == "RUNNING" and wf["tasks"][0]["domain"] == "mydomain"
        await ex.committer.flush()
        stored = ex.store.get_workflow(wid)
        assert stored is not None and orjson.loads(stored.json)["event"] == EVENT  # durable too

    run(tmp_path, story)


def test_start_workflow_action_task_to_domain_wins_and_unknown_workflow_fails(tmp_path: Path) -> None:
    async def story(ex: Executor) -> None:
        await register_chain(ex, "target2", "job2")
        await ex.events.add_handler(
            handler(
                "starter2",
                start_action("target2", taskToDomain={"job2": "fixed"}, version=1),
                start_action("no_such_workflow"),
                {"action": "start_workflow"},  # no parameters at all
            )
        )
        ex.events.publish(EVENT, "m", {"taskToDomain": {"job2": "from_payload"}})
        ok, missing, empty = await executions(ex, "starter2")
        assert ok["status"] == "COMPLETED"
        wf = await workflow_json(ex, ok["output"]["workflowId"])
        assert wf["taskToDomain"] == {"job2": "fixed"}
        assert (missing["id"], missing["status"]) == ("m_1", "FAILED")
        assert "No such workflow defined. name=no_such_workflow" in missing["output"]["exception"]
        assert (empty["id"], empty["status"]) == ("m_2", "FAILED") and empty["output"]["exception"]

    run(tmp_path, story)


def test_complete_task_by_workflow_id_and_ref_advances_the_workflow(tmp_path: Path) -> None:
    async def story(ex: Executor) -> None:
        await register_chain(ex, "approval", "approve", "ship")
        wid = await ex.start_workflow({"name": "approval", "input": {}})
        await ex.events.add_handler(
            handler(
                "approver",
                task_action(
                    "complete_task",
                    workflowId="${workflowInstanceId}",
                    taskRefName="approve",
                    output={"approved": "${approved}", "by": "${user.name}"},
                ),
            )
        )
        ex.events.publish(
            EVENT, "m-approve", {"workflowInstanceId": wid, "approved": True, "user": {"name": "ann"}}
        )
        [rec] = await executions(ex, "approver")
        assert rec["status"] == "COMPLETED" and rec["action"] == "complete_task"
        wf = await workflow_json(ex, wid)
        approve = task_of(wf, "approve")
        assert approve["status"] == "COMPLETED"
        # the whole substituted map replaces the output, plus the conductor.event.* keys
        assert approve["outputData"] == {
            "workflowId": wid,
            "taskId": None,
            "taskRefName": "approve",
            "reasonForIncompletion": None,
            "approved": True,
            "by": "ann",
            "conductor.event.messageId": "m-approve",
            "conductor.event.name": EVENT,
        }
        assert rec["output"] == approve["outputData"]
        assert task_of(wf, "ship")["status"] == "SCHEDULED"  # the decider ran
        assert ex.queue_size("ship") == 1 and ex.queue_size("approve") == 0

    run(tmp_path, story)


def test_fail_task_by_task_id_with_reason(tmp_path: Path) -> None:
    async def story(ex: Executor) -> None:
        await register_chain(ex, "failing", "step")
        wid = await ex.start_workflow({"name": "failing", "input": {}})
        task_id = (await workflow_json(ex, wid))["tasks"][0]["taskId"]
        await ex.events.add_handler(
            handler(
                "failer",
                task_action("fail_task", taskId="${id}", reasonForIncompletion="${why}", output={"x": 1}),
            )
        )
        ex.events.publish(EVENT, "m-fail", {"id": task_id, "why": "rejected upstream"})
        [rec] = await executions(ex, "failer")
        assert rec["status"] == "COMPLETED" and rec["action"] == "fail_task"
        wf = await workflow_json(ex, wid)
        assert wf["tasks"][0]["status"] == "FAILED"
        assert wf["tasks"][0]["reasonForIncompletion"] == "rejected upstream"
        assert wf["tasks"][0]["outputData"]["x"] == 1
        assert wf["status"] == "FAILED"  # retryCount 0

    run(tmp_path, story)


def test_complete_task_targets_the_open_attempt_and_reports_missing_tasks(tmp_path: Path) -> None:
    async def story(ex: Executor) -> None:
        await register_chain(ex, "retrying", "flaky", retry_count=1)
        wid = await ex.start_workflow({"name": "retrying", "input": {}})
        [polled_task] = await ex.poll("flaky", worker_id="w", timeout_ms=0)
        polled = polled_task.to_json()
        await ex.update_task({"workflowInstanceId": wid, "taskId": polled["taskId"], "status": "FAILED"})
        await ex.events.add_handler(
            handler(
                "completer",
                task_action("complete_task", workflowId=wid, taskRefName="flaky"),
                task_action("complete_task", workflowId=wid, taskRefName="nope"),
                task_action("complete_task", taskId="no-such-task"),
                task_action("complete_task", workflowId="no-such-workflow", taskRefName="flaky"),
            )
        )
        ex.events.publish(EVENT, "m", {})
        done, no_ref, no_id, no_wf = await executions(ex, "completer")
        wf = await workflow_json(ex, wid)
        assert [t["status"] for t in wf["tasks"]] == ["FAILED", "COMPLETED"]  # the retry, not the failed one
        assert wf["status"] == "COMPLETED"
        assert done["status"] == "COMPLETED" and "error" not in done["output"]
        assert no_ref["status"] == "COMPLETED"
        assert (
            no_ref["output"]["error"]
            == f"No task found with taskId: null, reference name: nope, workflowId: {wid}"
        )
        assert no_id["status"] == "COMPLETED"
        assert no_id["output"]["error"].startswith("No task found with taskId: no-such-task")
        assert no_wf["status"] == "FAILED"  # as upstream: getWorkflow throws NotFoundException
        assert no_wf["output"]["exception"] == "No such workflow found by id: no-such-workflow"

    run(tmp_path, story)


def test_unsupported_actions_fail(tmp_path: Path) -> None:
    async def story(ex: Executor) -> None:
        await ex.events.add_handler(
            handler(
                "unsupported",
                {
                    "action": "terminate_workflow",
                    "terminate_workflow": {"workflowId": "x", "terminationReason": "r"},
                },
                {"action": "update_workflow_variables", "update_workflow_variables": {"workflowId": "x"}},
            )
        )
        ex.events.publish(EVENT, "m", {})
        recs = await executions(ex, "unsupported")
        assert [(r["id"], r["status"], r["action"]) for r in recs] == [
            ("m_0", "FAILED", "terminate_workflow"),
            ("m_1", "FAILED", "update_workflow_variables"),
        ]
        assert recs[0]["output"] == {
            "exception": f"Action not supported terminate_workflow for event {EVENT}"
        }

    run(tmp_path, story)


# ---------------------------------------------------------------------- conditions


def test_javascript_condition_true_false_and_json_expansion(tmp_path: Path) -> None:
    async def story(ex: Executor) -> None:
        await register_chain(ex, "big_order", "pack")
        await ex.events.add_handler(
            handler(
                "big", start_action("big_order"), condition="$.order.amount > 100", evaluatorType="javascript"
            )
        )
        ex.events.publish(EVENT, "small", {"order": {"amount": 5}})
        ex.events.publish(EVENT, "large", {"order": '{"amount": 500}'})  # a JSON string: expanded first
        ex.events.publish(EVENT, "broken", {"other": 1})  # $.order is undefined: a TypeError
        recs = {r["messageId"]: r for r in await executions(ex, "big")}
        assert recs["small"]["status"] == "SKIPPED" and "action" not in recs["small"]
        assert recs["small"]["output"] == {
            "msg": '{"order":{"amount":5}}',
            "condition": "$.order.amount > 100",
        }
        assert recs["large"]["status"] == "COMPLETED" and recs["large"]["id"] == "large_0"
        assert recs["broken"]["status"] == "FAILED" and "TypeError" in recs["broken"]["output"]["exception"]
        # the action saw the payload as published (expansion is for the condition only)
        wf = await workflow_json(ex, recs["large"]["output"]["workflowId"])
        assert wf["status"] == "RUNNING"

    run(tmp_path, story)


def test_value_param_condition(tmp_path: Path) -> None:
    async def story(ex: Executor) -> None:
        await ex.events.add_handler(
            handler("vp", {"action": "terminate_workflow"}, condition="go", evaluatorType="value-param")
        )
        for mid, value in (("yes", True), ("num", 3), ("no", False), ("zero", 0), ("text", "true")):
            ex.events.publish(EVENT, mid, {"go": value})
        recs = {r["messageId"]: r["status"] for r in await executions(ex, "vp")}
        # truthy = Boolean true or a number > 0 (then the unsupported action fails)
        assert recs == {
            "yes": "FAILED",
            "num": "FAILED",
            "no": "SKIPPED",
            "zero": "SKIPPED",
            "text": "SKIPPED",
        }

    run(tmp_path, story)


# ---------------------------------------------------------------------- delivery


def test_buffered_until_a_handler_becomes_active_and_inactive_handlers_are_ignored(tmp_path: Path) -> None:
    async def story(ex: Executor) -> None:
        await register_chain(ex, "late", "work")
        queue = "conductor:src:late_ref"
        ex.events.publish(queue, "early-1", {"n": 1})
        ex.events.publish(queue, "early-2", {"n": 2})
        assert ex.events.buffered(queue) == 2
        await ex.events.add_handler(
            handler("late_h", start_action("late", input={"n": "${n}"}), event=queue, active=False)
        )
        ex.events.publish(queue, "early-3", {"n": 3})
        await ex.events.settle()
        assert ex.events.buffered(queue) == 3  # an inactive handler receives nothing
        assert await ex.events.get_executions("late_h") == []
        await ex.events.update_handler(
            handler("late_h", start_action("late", input={"n": "${n}"}), event=queue)
        )
        recs = await executions(ex, "late_h")
        assert ex.events.buffered(queue) == 0
        assert [r["messageId"] for r in recs] == ["early-1", "early-2", "early-3"]
        inputs = [(await workflow_json(ex, r["output"]["workflowId"]))["input"]["n"] for r in recs]
        assert inputs == [1, 2, 3]

    run(tmp_path, story)


def test_buffer_is_bounded_per_queue(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def story(ex: Executor) -> None:
        ex.events._buffer_size = 3
        for i in range(5):
            ex.events.publish("conductor:x:y", f"m{i}", {"i": i})
        ex.events.publish("conductor:x:z", "other", {})
        assert ex.events.buffered("conductor:x:y") == 3 and ex.events.buffered("conductor:x:z") == 1
        await ex.events.add_handler(
            handler("bounded", {"action": "terminate_workflow"}, event="conductor:x:y")
        )
        recs = await executions(ex, "bounded")
        assert [r["messageId"] for r in recs] == ["m2", "m3", "m4"]  # the oldest were dropped

    with caplog.at_level("WARNING", logger="conductor_lab.engine.events"):
        run(tmp_path, story)
    assert "dropped the oldest (m0" in caplog.text


def test_duplicate_message_is_skipped_and_records_are_in_the_store(tmp_path: Path) -> None:
    async def story(ex: Executor) -> None:
        await register_chain(ex, "once", "only")
        await ex.events.add_handler(handler("dedup", start_action("once"), {"action": "fail_task"}))
        ex.events.publish(EVENT, "same", {})
        await ex.events.settle()
        ex.events.publish(EVENT, "same", {})  # a redelivery
        recs = await executions(ex, "dedup")
        assert [r["id"] for r in recs] == ["same_0", "same_1"]
        assert len(ex.workflows) == 1
        await ex.committer.flush()  # a commit barrier: the records are in DuckDB
        rows = sorted(ex.store.get_event_executions(EVENT), key=lambda r: r.id)
        assert [(r.id, r.name, r.status, r.action) for r in rows] == [
            ("same_0", "dedup", "COMPLETED", "start_workflow"),
            ("same_1", "dedup", "FAILED", "fail_task"),  # no fail_task parameters
        ]
        assert orjson.loads(rows[0].output) == {"workflowId": next(iter(ex.workflows))}
        # two handlers on one event: both run, each with its own records
        await ex.events.add_handler(handler("second", {"action": "terminate_workflow"}))
        ex.events.publish(EVENT, "next", {})
        assert [r["id"] for r in await executions(ex, "second")] == ["next_0"]
        assert [r["id"] for r in await executions(ex, "dedup")][-2:] == ["next_0", "next_1"]

    run(tmp_path, story)


def test_string_payload_and_publish_from_another_thread(tmp_path: Path) -> None:
    async def story(ex: Executor) -> None:
        await ex.events.add_handler(
            handler("strings", {"action": "terminate_workflow"}, condition="$.a == 1")
        )
        ex.events.publish(EVENT, "json-text", '{"a": 1}')  # a JSON string payload is parsed
        ex.events.publish(EVENT, "plain-text", "not json")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, ex.events.publish, EVENT, "from-thread", {"a": 1})
        recs = {r["messageId"]: r["status"] for r in await _wait_records(ex, "strings", 3)}
        assert recs == {"json-text": "FAILED", "plain-text": "SKIPPED", "from-thread": "FAILED"}

    run(tmp_path, story)


async def _wait_records(ex: Executor, name: str, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    async with asyncio.timeout(timeout):
        while True:
            recs = await executions(ex, name)
            if len(recs) >= n:
                return recs
            await asyncio.sleep(0.01)


# ---------------------------------------------------------------------- definitions


def test_handler_crud_errors_and_lookup(tmp_path: Path) -> None:
    async def story(ex: Executor) -> None:
        ev = ex.events
        await ev.add_handler(handler("a", {"action": "start_workflow"}, event="e1"))
        await ev.add_handler(handler("b", {"action": "start_workflow"}, event="e1", active=False))
        await ev.add_handler(
            {"name": "c", "event": "e2", "actions": [{"action": "complete_task"}], "extra": {"k": 1}}
        )
        with pytest.raises(Conflict, match="EventHandler with name a already exists!"):
            await ev.add_handler(handler("a", {"action": "start_workflow"}))
        with pytest.raises(NotFound, match="EventHandler with name zz not found!"):
            await ev.update_handler(handler("zz", {"action": "start_workflow"}))
        with pytest.raises(NotFound, match="EventHandler with name zz not found!"):
            await ev.remove_handler("zz")
        with pytest.raises(InvalidInput) as err:
            await ev.add_handler({"event": "", "actions": []})
        assert err.value.validation_errors == [
            {"path": "addEventHandler.eventHandler.name", "message": "Missing event handler name"},
            {
                "path": "addEventHandler.eventHandler.event",
                "message": "Missing event location",
                "invalidValue": "",
            },
            {
                "path": "addEventHandler.eventHandler.actions",
                "message": "No actions specified. Please specify at-least one action",
            },
        ]
        with pytest.raises(MalformedBody):
            await ev.add_handler(handler("bad", {"action": "explode"}))
        assert [h["name"] for h in ev.get_handlers()] == ["a", "b", "c"]
        c = ev.get_handlers()[2]
        assert c["active"] is False and c["extra"] == {"k": 1}  # default false; unknown fields kept
        assert c["actions"] == [{"action": "complete_task", "expandInlineJSON": False}]
        assert [h["name"] for h in ev.get_handlers_for_event("e1")] == ["a"]
        assert [h["name"] for h in ev.get_handlers_for_event("e1", active_only=False)] == ["a", "b"]
        await ev.update_handler(handler("a", {"action": "start_workflow"}, event="e2"))  # moves to e2
        assert ev.get_handlers_for_event("e1", active_only=False)[0]["name"] == "b"
        assert [h["name"] for h in ev.get_handlers_for_event("e2", active_only=False)] == ["a", "c"]
        await ev.remove_handler("b")
        assert ev.get_handlers_for_event("e1", active_only=False) == []

    run(tmp_path, story)

    async def reopened(ex: Executor) -> None:  # definitions are durable
        assert [(h["name"], h["event"], h["active"]) for h in ex.events.get_handlers()] == [
            ("a", "e2", True),
            ("c", "e2", False),
        ]

    run(tmp_path, reopened)


# ---------------------------------------------------------------------- pure parts


def test_task_by_ref_prefers_open_tasks_of_the_highest_iteration() -> None:
    def t(task_id: str, ref: str, iteration: int, seq: int, terminal: bool) -> SimpleNamespace:
        return SimpleNamespace(
            taskId=task_id,
            referenceTaskName=ref,
            iteration=iteration,
            seq=seq,
            status=SimpleNamespace(terminal=terminal),
        )

    wf = SimpleNamespace(
        tasks=[
            t("a1", "step__1", 1, 1, True),
            t("a2", "step__2", 2, 2, False),
            t("a3", "step__3", 3, 3, True),  # highest iteration, but done
            t("b1", "other", 0, 4, False),
            t("c1", "done", 0, 5, True),
            t("c2", "done", 0, 6, True),
        ]
    )
    async def get_workflow(workflow_id: str) -> SimpleNamespace:
        return {"w": wf}[workflow_id]

    service = EventService(SimpleNamespace(get_workflow=get_workflow))  # type: ignore[arg-type]

    async def main() -> None:
        assert await service._task_by_ref("w", "step") == ("a2", "w")
        assert await service._task_by_ref("w", "step__3") == ("a3", "w")
        assert await service._task_by_ref("w", "other") == ("b1", "w")
        assert await service._task_by_ref("w", "done") == ("c2", "w")  # none open: the latest
        assert await service._task_by_ref("w", "missing") is None

    asyncio.run(main())


def test_expand_follows_json_utils() -> None:
    payload = {
        "obj": '{"a": {"b": "[1, 2]"}}',
        "arr": ' [1, {"x": 1}]',
        "bad": "{not json",
        "text": "plain",
        "nested": {"inner": '{"k": true}'},
        "list": ['{"not": "expanded"}', {"deep": "[3]"}],
    }
    assert expand(payload) == {
        "obj": {"a": {"b": "[1, 2]"}},  # a parsed value is not expanded again
        "arr": [1, {"x": 1}],
        "bad": "{not json",
        "text": "plain",
        "nested": {"inner": {"k": True}},
        "list": ['{"not": "expanded"}', {"deep": [3]}],  # list elements that are strings stay
    }
    assert expand("42") == 42 and expand("nope") == "nope" and expand(None) is None
