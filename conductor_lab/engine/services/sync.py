"""Synchronous execution, signals and mock-driven test runs (contract 7.11, 7.12).

conductor-oss spreads these over ``WorkflowResource.executeWorkflow`` / ``testWorkflow``,
``TaskResource.updateTaskSync`` / ``signalWorkflowTask*``, ``WorkflowSignalResponder``,
``NotificationResult`` and ``WorkflowTestService``; here they are one service over the workflow
and task services. The engine answers with model objects: a :class:`SignalResult` says which
workflow or task the response describes, and ``server/shapes.py`` renders it as a ``WorkflowRun``
or ``TaskRun``.

Waiting is event-driven: conductor-oss re-reads the workflow every 100 ms; here a waiter sleeps
on the runtime's change event (``Runtime.change_event``) and re-checks its condition whenever a
task or workflow changed, until its deadline.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conductor_lab.engine.model import RESULT_STATUS_NAMES, Task, Workflow
from conductor_lab.engine.runtime import Runtime
from conductor_lab.engine.services.tasks import TaskService, status_mismatch
from conductor_lab.engine.services.workflows import WorkflowService
from conductor_lab.engine.tasks.base import base_ref
from conductor_lab.engine.tasks.wait import WaitInputError, deadline
from conductor_lab.engine.workflow_executor import WorkflowExecutor
from conductor_lab.errors import ConductorLabError, MalformedBody, NotFound

#: ``WorkflowSignalReturnStrategy``
RETURN_STRATEGIES = ("TARGET_WORKFLOW", "BLOCKING_WORKFLOW", "BLOCKING_TASK", "BLOCKING_TASK_INPUT")
DEFAULT_WAIT_SECONDS = 10
DEFAULT_SIGNAL_TIMEOUT_MS = 5000

#: ``WorkflowTestService``: task types completed by the engine, never by a mock
TEST_OPERATORS = frozenset(
    {
        "JOIN",
        "DO_WHILE",
        "SET_VARIABLE",
        "FORK",
        "INLINE",
        "TERMINATE",
        "DECISION",
        "DYNAMIC",
        "FORK_JOIN",
        "FORK_JOIN_DYNAMIC",
        "SWITCH",
        "SUB_WORKFLOW",
    }
)
MAX_TEST_LOOPS = 20_000


@dataclass(slots=True)
class SignalResult:
    """What a synchronous execute or signal answers (conductor-oss ``NotificationResult``).

    ``workflow`` or ``task`` is the subject of the response (a ``WorkflowRun`` or a ``TaskRun``);
    ``target`` is the workflow the request named.
    """

    strategy: str
    request_id: str
    target: Workflow
    workflow: Workflow | None
    task: Task | None
    timed_out: bool


@dataclass(slots=True)
class TaskMock:
    """``WorkflowTestRequest.TaskMock``."""

    status: str
    output: dict[str, Any]
    execution_time: int
    queue_wait_time: int


@dataclass(slots=True)
class TestPlan:
    """The mocks of one ``WorkflowTestRequest`` (and of its sub-workflows, by task reference)."""

    mocks: dict[str, list[TaskMock]]
    subs: dict[str, TestPlan]


def find_blocking(
    wf: Workflow, refs: list[str], lookup: Callable[[str], Workflow | None]
) -> tuple[list[Task], Workflow | None]:
    """Blocking tasks of ``wf`` and its running sub-workflows, depth-first in task order, and the
    workflow holding the first (conductor-oss ``WorkflowSignalResponder.findBlockingTasks``).

    A task blocks when it is a WAIT waiting for a signal (no ``duration`` / ``until``) and not
    terminal, or when its reference name is one of ``refs`` and it is terminal.
    """
    found: list[Task] = []
    where: Workflow | None = None
    for t in wf.tasks:
        if t.taskType == "WAIT" and not t.status.terminal and _indefinite(t):
            found.append(t)
            where = where or wf
        for ref in refs:
            if ref == t.referenceTaskName and t.status.terminal:
                found.append(t)
                where = where or wf
        if t.taskType == "SUB_WORKFLOW" and t.subWorkflowId and not t.status.terminal:
            child = lookup(t.subWorkflowId)
            if child is not None:
                sub_found, sub_where = find_blocking(child, refs, lookup)
                if sub_found:
                    found.extend(sub_found)
                    where = where or sub_where
    return found, where


def _indefinite(t: Task) -> bool:
    try:
        return deadline(t) is None
    except WaitInputError:
        return False


def pending_task(wf: Workflow, ref: str) -> Task | None:
    """The first open task with reference ``ref``, else the first open one of a loop iteration
    of ``ref`` (conductor-oss ``ExecutionService.getPendingTaskForWorkflow``)."""
    for t in wf.tasks:
        if not t.status.terminal and t.referenceTaskName == ref:
            return t
    for t in wf.tasks:
        if not t.status.terminal and base_ref(t) == ref:
            return t
    return None


def check_status(status: str) -> None:
    if status not in RESULT_STATUS_NAMES:
        raise MalformedBody(status_mismatch(status))


def check_strategy(strategy: str) -> None:
    if strategy not in RETURN_STRATEGIES:
        raise MalformedBody(
            f"No enum constant org.conductoross.conductor.model.WorkflowSignalReturnStrategy.{strategy}"
        )


def _output_map(output: Any) -> dict[str, Any]:
    if output is None:
        return {}
    if not isinstance(output, dict):
        raise MalformedBody(
            "Cannot deserialize value of type `java.util.LinkedHashMap` from a non-object value"
        )
    return output


class SyncService:
    def __init__(
        self, rt: Runtime, wx: WorkflowExecutor, workflows: WorkflowService, tasks: TaskService
    ) -> None:
        self.rt = rt
        self.wx = wx
        self.workflows = workflows
        self.tasks = tasks

    # ------------------------------------------------------------------------------------------
    # POST /api/workflow/execute/{name}/{version}

    async def execute_workflow(
        self,
        name: str,
        version: int | None,
        request: Any,
        *,
        request_id: str | None = None,
        wait_until_task_ref: str | None = None,
        wait_for_seconds: int | None = DEFAULT_WAIT_SECONDS,
        return_strategy: str = "TARGET_WORKFLOW",
    ) -> SignalResult:
        """Start a workflow and wait until it ends, blocks, or ``wait_for_seconds`` pass.

        ``version`` 0 or None: the latest. Blocking: a WAIT waiting for a signal anywhere in the
        workflow or its running sub-workflows, or a task of ``wait_until_task_ref`` (comma-separated
        reference names) that has ended."""
        check_strategy(return_strategy)
        if not isinstance(request, dict):
            raise MalformedBody("Cannot deserialize StartWorkflowRequest from a non-object JSON value")
        req = dict(request)
        wd = req.get("workflowDef")
        if isinstance(wd, dict) and wd.get("tasks") and isinstance(req.get("input", {}), dict):
            inp = dict(req.get("input") or {})
            meta = inp.get("_systemMetadata")
            inp["_systemMetadata"] = {**(meta if isinstance(meta, dict) else {}), "dynamic": True}
            req["input"] = inp
        req["name"] = name
        req["version"] = version or None
        seconds = wait_for_seconds or DEFAULT_WAIT_SECONDS
        rid = request_id if request_id and request_id.strip() else str(uuid.uuid4())
        refs = (
            [r.strip() for r in wait_until_task_ref.split(",")]
            if wait_until_task_ref and wait_until_task_ref.strip()
            else []
        )
        workflow_id = await self.workflows.start_workflow(req)
        return await self.await_signal(workflow_id, refs, return_strategy, rid, float(seconds))

    async def await_signal(
        self, workflow_id: str, refs: list[str], strategy: str, request_id: str, timeout_s: float
    ) -> SignalResult:
        """Wait (on change events, until ``timeout_s``) for the workflow to end or block."""
        loop = asyncio.get_running_loop()
        until = loop.time() + max(0.0, timeout_s)
        while True:
            changed = self.rt.change_event()  # taken before the check: no change slips in between
            wf = await self.rt.workflow(workflow_id)
            blocking, where = find_blocking(wf, refs, self.rt.workflows.get)
            if wf.status.terminal or blocking:
                await self.rt.committer.barrier()
                return self._result(strategy, request_id, wf, where or wf, blocking, timed_out=False)
            remaining = until - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                break
        wf = await self.rt.workflow(workflow_id)
        await self.rt.committer.barrier()
        return self._result(strategy, request_id, wf, wf, [], timed_out=True)

    @staticmethod
    def _result(
        strategy: str,
        request_id: str,
        target: Workflow,
        where: Workflow,
        blocking: list[Task],
        *,
        timed_out: bool,
    ) -> SignalResult:
        """conductor-oss ``NotificationResult.toResponse``."""
        if strategy == "TARGET_WORKFLOW" or (strategy == "BLOCKING_WORKFLOW" and not blocking):
            return SignalResult(strategy, request_id, target, target, None, timed_out)
        if strategy == "BLOCKING_WORKFLOW":
            return SignalResult(strategy, request_id, target, where, None, timed_out)
        if not blocking:  # conductor-oss: no value, the reactive pipeline fails (500)
            state = "timed out waiting" if timed_out else f"is {target.status.value}"
            raise ConductorLabError(
                f"No blocking task to return for returnStrategy={strategy}: "
                f"workflow {target.workflowId} {state}"
            )
        return SignalResult(strategy, request_id, target, None, blocking[0], timed_out)

    # ------------------------------------------------------------------------------------------
    # POST /api/tasks/{workflowId}/{taskRefName}/{status}/sync

    async def update_task_sync(
        self, workflow_id: str, ref: str, status: str, output: Any, *, worker_id: str | None = None
    ) -> Workflow:
        """Update the open task ``ref`` (output merged) and answer with the workflow after it."""
        check_status(status)
        out = _output_map(output)
        try:
            wf: Workflow | None = await self.rt.workflow(workflow_id)
        except NotFound:  # conductor-oss lists the workflow's tasks: none
            wf = None
        pending = pending_task(wf, ref) if wf is not None else None
        if pending is None:
            raise NotFound(f"Found no running task {ref} of workflow {workflow_id} to update")
        await self.tasks.update_task(
            {
                "workflowInstanceId": pending.workflowInstanceId,
                "taskId": pending.taskId,
                "status": status,
                "outputData": {**pending.outputData, **out},
                "workerId": worker_id,
                "reasonForIncompletion": pending.reasonForIncompletion,
                "callbackAfterSeconds": pending.callbackAfterSeconds,
            }
        )
        return await self.rt.workflow(pending.workflowInstanceId)

    # ------------------------------------------------------------------------------------------
    # POST /api/tasks/{workflowId}/{status}/signal[/sync]

    async def signal(self, workflow_id: str, status: str, output: Any) -> str | None:
        """Update the first open WAIT task (depth-first into running sub-workflows) with
        ``status`` and ``output`` merged into its output; its id, or None when nothing waits."""
        check_status(status)
        out = _output_map(output)
        pending = await self._pending_wait(workflow_id)
        if pending is None:
            return None
        return await self.tasks.update_task(
            {
                "workflowInstanceId": pending.workflowInstanceId,
                "taskId": pending.taskId,
                "status": status,
                "outputData": {**pending.outputData, **out},
                "workerId": pending.workerId,
                "reasonForIncompletion": pending.reasonForIncompletion,
                "callbackAfterSeconds": pending.callbackAfterSeconds,
            }
        )

    async def signal_sync(
        self,
        workflow_id: str,
        status: str,
        output: Any,
        *,
        return_strategy: str = "TARGET_WORKFLOW",
        timeout_ms: int = DEFAULT_SIGNAL_TIMEOUT_MS,
    ) -> SignalResult:
        """Signal, then wait as ``execute_workflow`` does (no reference names)."""
        check_strategy(return_strategy)
        task_id = await self.signal(workflow_id, status, output)
        if task_id is None:
            raise NotFound(f"Found no blocked task in workflow {workflow_id} to signal")
        return await self.await_signal(
            workflow_id, [], return_strategy, str(uuid.uuid4()), timeout_ms / 1000.0
        )

    async def _pending_wait(self, workflow_id: str) -> Task | None:
        """conductor-oss ``TaskServiceImpl.findPendingBlockingTask`` (a timed WAIT counts too)."""
        wf = await self.rt.workflow(workflow_id)
        for t in wf.tasks:
            if t.taskType == "WAIT" and not t.status.terminal:
                return t
        for t in wf.tasks:
            if t.taskType == "SUB_WORKFLOW" and not t.status.terminal and t.subWorkflowId:
                found = await self._pending_wait(t.subWorkflowId)
                if found is not None:
                    return found
        return None

    # ------------------------------------------------------------------------------------------
    # POST /api/workflow/test

    async def test_workflow(self, request: Any) -> Workflow:
        """Run a workflow with mocked task results (conductor-oss ``WorkflowTestService``).

        The execution is real, with ``taskToDomain["*"]`` set to a random domain so that no
        worker polls its tasks. Open worker (non-operator) tasks get the next mock of their
        reference name; the run stops when the workflow ends, when an open worker task has no
        mock, or after 20,000 rounds. Sub-workflows use ``subWorkflowTestRequest[ref]``.
        """
        if not isinstance(request, dict):
            raise MalformedBody("Cannot deserialize WorkflowTestRequest from a non-object JSON value")
        plan = _test_plan(request, "WorkflowTestRequest")
        req = {k: v for k, v in request.items() if k not in ("taskRefToMockOutput", "subWorkflowTestRequest")}
        domains = req.get("taskToDomain")
        req["taskToDomain"] = {**(domains if isinstance(domains, dict) else {}), "*": str(uuid.uuid4())}
        workflow_id = await self.workflows.start_workflow(req)
        return await self._run_test(plan, workflow_id)

    async def _run_test(self, plan: TestPlan, workflow_id: str) -> Workflow:
        mocks = plan.mocks
        loops = 0
        while True:
            loops += 1
            wf = await self.rt.workflow(workflow_id)
            if loops > MAX_TEST_LOOPS:
                return wf
            running = [t for t in wf.tasks if not t.status.terminal]
            if any(t.taskType not in TEST_OPERATORS and t.referenceTaskName not in mocks for t in running):
                break
            for t in running:
                if t.status.terminal:  # ended meanwhile (a decision earlier in this round)
                    continue
                ref = t.referenceTaskName
                if t.taskType == "SUB_WORKFLOW":
                    sub = plan.subs.get(ref)
                    if t.subWorkflowId and sub is not None:
                        await self._run_test(sub, t.subWorkflowId)
                queue = mocks.get(ref)
                if not queue or t.taskType in TEST_OPERATORS:
                    mocks.pop(ref, None)
                    await self.workflows.decide(workflow_id)
                else:
                    await self._apply_mock(t, queue.pop(0))
            if wf.status.terminal or not mocks:
                break
            await asyncio.sleep(0)  # a long run must not hold the loop
        return wf

    async def _apply_mock(self, t: Task, mock: TaskMock) -> None:
        timed = mock.execution_time > 0 or mock.queue_wait_time > 0
        if timed:  # backdated, as if the worker had waited and run that long
            now = self.rt.clock()
            t.scheduledTime = now - (mock.execution_time + mock.queue_wait_time)
            t.startTime = now - mock.execution_time
        await self.tasks.update_task(
            {
                "workflowInstanceId": t.workflowInstanceId,
                "taskId": t.taskId,
                "status": mock.status,
                "outputData": {**t.outputData, **mock.output},
            }
        )
        if timed:  # timeouts are checked against the backdated clock
            await self.workflows.decide(t.workflowInstanceId)


def _test_plan(request: dict[str, Any], where: str) -> TestPlan:
    """The mocks of a ``WorkflowTestRequest`` JSON (wrong shapes: 500, as Jackson upstream)."""
    raw = request.get("taskRefToMockOutput") or {}
    if not isinstance(raw, dict):
        raise MalformedBody(f"Cannot deserialize {where}.taskRefToMockOutput: expected a JSON object")
    mocks: dict[str, list[TaskMock]] = {}
    for ref, items in raw.items():
        if items is None:
            items = []
        if not isinstance(items, list):
            raise MalformedBody(
                f"Cannot deserialize {where}.taskRefToMockOutput[{ref}]: expected a JSON array"
            )
        mocks[ref] = [_mock(item, f"{where}.taskRefToMockOutput[{ref}]") for item in items]
    raw_subs = request.get("subWorkflowTestRequest") or {}
    if not isinstance(raw_subs, dict):
        raise MalformedBody(f"Cannot deserialize {where}.subWorkflowTestRequest: expected a JSON object")
    subs: dict[str, TestPlan] = {}
    for ref, sub in raw_subs.items():
        if not isinstance(sub, dict):
            raise MalformedBody(
                f"Cannot deserialize {where}.subWorkflowTestRequest[{ref}]: expected a JSON object"
            )
        subs[ref] = _test_plan(sub, f"{where}.subWorkflowTestRequest[{ref}]")
    return TestPlan(mocks, subs)


def _mock(item: Any, where: str) -> TaskMock:
    if not isinstance(item, dict):
        raise MalformedBody(f"Cannot deserialize {where}: expected a TaskMock object")
    status = item.get("status") or "COMPLETED"
    if not isinstance(status, str) or status not in RESULT_STATUS_NAMES:
        raise MalformedBody(
            f"Cannot deserialize {where}.status: not one of the values accepted for Enum class: "
            f"[{', '.join(sorted(RESULT_STATUS_NAMES))}]"
        )
    output = item.get("output")
    if output is not None and not isinstance(output, dict):
        raise MalformedBody(f"Cannot deserialize {where}.output: expected a JSON object")
    times = []
    for key in ("executionTime", "queueWaitTime"):
        v = item.get(key) or 0
        if isinstance(v, bool) or not isinstance(v, int):
            raise MalformedBody(f"Cannot deserialize {where}.{key}: expected a number of milliseconds")
        times.append(v)
    return TaskMock(status, output or {}, times[0], times[1])
