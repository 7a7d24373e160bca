"""Applying decisions: the one place where the decider's verdicts change state.

``WorkflowExecutor`` (conductor-oss's name for the same job) starts workflows, runs the pure
decider over a workflow until it settles, applies each ``Decision`` to the runtime state (the
group commit makes it durable), carries out the effects system tasks ask for (start a workflow,
publish an event), runs their asynchronous work off the decider (HTTP calls, long scripts) with
cancellation, ends workflows (cancelling what is open, cascading to sub-workflows) and reports a
finished sub-workflow to its parent. It is also the ``Services`` the task types see.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from conductor_lab.engine import commands
from conductor_lab.engine.decide import Decision, decide, output_or_empty
from conductor_lab.engine.httpcall import HttpCaller
from conductor_lab.engine.metadata import parse_workflow_def
from conductor_lab.engine.model import (
    EMPTY,
    StartWorkflowRequest,
    Task,
    TaskStatus,
    Workflow,
    WorkflowStatus,
)
from conductor_lab.engine.params import to_java_string
from conductor_lab.engine.runtime import Runtime
from conductor_lab.engine.tasks import type_of
from conductor_lab.engine.tasks.base import Outcome, Publish, StartWorkflow
from conductor_lab.engine.tasks.sub_workflow import child_result
from conductor_lab.engine.timers import Timers
from conductor_lab.errors import ConductorLabError, NotFound, validation_error

if TYPE_CHECKING:
    from conductor_lab.engine.events import EventService

log = logging.getLogger(__name__)

#: decider passes one workflow may take in one go before yielding the loop to other work
MAX_DECIDE_PASSES = 2000


class WorkflowExecutor:
    """Decides workflows and applies the decisions (runs on the engine's event loop, no locks)."""

    def __init__(self, rt: Runtime, timers: Timers, new_id: Callable[[], str]) -> None:
        self.rt = rt
        self.timers = timers
        self.new_id = new_id
        self.events: EventService | None = None  # set by the Executor (publishing EVENT tasks)
        # one workflow is decided at a time; runs asked for meanwhile (a child ending inside
        # its parent's pass) wait their turn here
        self._deciding = False
        self._again: dict[str, list[Task] | None] = {}
        # asynchronous task work (HTTP calls, long scripts), by task id
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._scripts = ThreadPoolExecutor(max_workers=2, thread_name_prefix="conductor-lab-script")
        self.http = HttpCaller()

    async def close(self) -> None:
        for job in list(self._jobs.values()):
            job.cancel()
        await self.http.aclose()
        self._scripts.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------------------------------
    # starting

    def start(
        self,
        r: StartWorkflowRequest,
        *,
        workflow_id: str | None = None,
        parent: tuple[Workflow, Task] | None = None,
    ) -> Workflow:
        """Create a workflow execution and take its first decisions (not yet durable)."""
        rt = self.rt
        if r.priority < 0 or r.priority > 99:  # StartWorkflowRequest's @Min / @Max messages
            bound = "maximum 99" if r.priority > 99 else "minimum 0"
            message = f"priority: {r.priority} should be {bound}"
            raise validation_error("startWorkflow.startWorkflowRequest.priority", message, r.priority)
        if r.workflowDef is not None:
            wd = parse_workflow_def(
                r.workflowDef, "startWorkflow.startWorkflowRequest.workflowDef", rt.meta.task_defs
            )
            registered = False
        else:
            if not r.name:
                raise validation_error(
                    "startWorkflow.startWorkflowRequest.name", "Workflow name cannot be null or empty"
                )
            try:
                wd = rt.meta.get_workflow_def(r.name, r.version)
            except NotFound:
                raise NotFound(
                    f"No such workflow defined. name={r.name}, version={to_java_string(r.version)}"
                ) from None
            registered = True
        sid, snap, new_text = rt.meta.snapshot_for(wd, registered=registered)
        if new_text is not None:
            rt.committer.snapshot(sid, new_text)
        now = rt.clock()
        wf = Workflow(workflow_id or self.new_id(), snap, sid, now)
        if parent is not None:
            wf.parentWorkflowId = parent[0].workflowId
            wf.parentWorkflowTaskId = parent[1].taskId
        inp = r.input or EMPTY
        if inp and snap.inputTemplate:
            inp = {**snap.inputTemplate, **inp}
        wf.input = inp
        wf.correlationId = r.correlationId
        wf.priority = r.priority
        wf.taskToDomain = dict(r.taskToDomain) if r.taskToDomain else None
        rt.workflows[wf.workflowId] = wf
        rt.workflow_changed(wf, None)
        try:
            self.run(wf)
        except Exception:
            rt.forget(wf.workflowId)
            rt.committer.delete_workflow(wf.workflowId)
            raise
        rt.metrics.workflow_started(wf)
        self.timers.rearm()
        return wf

    # ------------------------------------------------------------------------------------------
    # deciding

    def run(self, wf: Workflow, changed: list[Task] | None = None) -> None:
        """Decide and apply until nothing changes (system tasks advance in between).

        ``changed``: the tasks changed since the workflow was last decided (``None``: a full
        pass). Runs asked for while another is applying are queued and taken in turn, so no
        decision is ever applied re-entrantly.
        """
        key = wf.workflowId
        if key in self._again:
            prev = self._again[key]
            self._again[key] = None if prev is None or changed is None else prev + changed
        else:
            self._again[key] = changed
        if self._deciding:
            return
        self._deciding = True
        try:
            while self._again:
                wf_id, hint = next(iter(self._again.items()))
                del self._again[wf_id]
                target = self.rt.workflows.get(wf_id)
                if target is not None and not target.status.terminal:
                    self._settle(target, hint)
        finally:
            self._deciding = False

    def fire(self, workflow_ids: list[str]) -> int:
        """Full decider passes for workflows whose timer fired."""
        fired = 0
        for wf_id in workflow_ids:
            wf = self.rt.workflows.get(wf_id)
            if wf is not None and not wf.status.terminal:
                self.run(wf)
                fired += 1
        return fired

    def _settle(self, wf: Workflow, changed: list[Task] | None) -> None:
        rt = self.rt
        for _ in range(MAX_DECIDE_PASSES):
            now = rt.clock()
            d = decide(wf, now, new_id=self.new_id, changed=changed, defs=rt.meta)
            if d.wake_at is not None:
                self.timers.arm(wf.workflowId, d.wake_at)
            if not d.changed:
                return
            self._apply(wf, d, now)
            if d.complete is not None or d.settled:  # settled: the next pass would find nothing to do
                return
            changed = d.touched()
        # a long chain of system tasks: let other work in, then go on with a full pass
        log.info("workflow %s: %d decider passes, continuing on the next loop turn", wf.workflowId, MAX_DECIDE_PASSES)
        assert rt.loop is not None
        rt.loop.call_soon(self._continue, wf.workflowId)

    def _continue(self, workflow_id: str) -> None:
        wf = self.rt.workflows.get(workflow_id)
        if wf is not None and not wf.status.terminal:
            self.run(wf)
            self.timers.rearm()

    def _apply(self, wf: Workflow, d: Decision, now: int) -> None:
        rt = self.rt
        for t, changes in d.updates:
            old = t.status
            for k, v in changes.items():
                setattr(t, k, v)
            t.updateTime = now
            rt.task_changed(t, old)
            if t.status.terminal:
                rt.dequeue(t.taskId)
        if d.remove:
            self._remove_tasks(wf, d.remove)
        for t in d.schedule:
            t.seq = len(wf.tasks) + 1
            wf.tasks.append(t)
            rt.tasks[t.taskId] = t
            rt.task_changed(t, None)
            if type_of(t.node.type).kind == "worker":
                t.domain = rt.domain_for(wf, t)
                rt.enqueue(wf, t, t.callbackAfterSeconds * 1000)
        if d.variables:
            wf.variables = {**wf.variables, **d.variables}
        if d.complete is not None:
            self.end(wf, d.complete, d.reason, d.output, now, cancel_open=d.cancel_open, failed_task=d.failed_task)
        else:
            wf.updateTime = now
            rt.committer.workflow(wf)
            for t in d.run_async:
                self._launch(wf, t)
        for t, effect in d.effects:
            self._effect(wf, t, effect)

    def command(self, wf: Workflow, d: Decision | None, cause: str) -> None:
        """Apply a control verb's decision (``engine/commands.py``), then decide the workflow."""
        if d is None:
            return
        rt = self.rt
        now = rt.clock()
        with rt.caused_by(cause):
            old = wf.status
            for k, v in d.workflow_changes.items():
                setattr(wf, k, v)
            wf.updateTime = now
            for t in d.remove:  # their asynchronous work and queue entries go with them
                job = self._jobs.pop(t.taskId, None)
                if job is not None:
                    job.cancel()
            wf.index = None
            self._apply(wf, d, now)
            wf.index = None
            for t, _ in d.updates:  # tasks set back to SCHEDULED (or with a reset callback) are queued
                if t.status == TaskStatus.SCHEDULED and type_of(t.node.type).kind == "worker":
                    t.domain = rt.domain_for(wf, t)
                    rt.enqueue(wf, t, t.callbackAfterSeconds * 1000)
            rt.workflow_changed(wf, old)
            if not wf.status.terminal:
                rt.unfinish(wf.workflowId)
                if old.terminal:
                    self._resume_parent(wf, now)
                self.run(wf)
        self.timers.rearm()

    def _resume_parent(self, child: Workflow, now: int) -> None:
        """A sub-workflow runs again: its SUB_WORKFLOW task (and the parent) run again too."""
        parent = self.rt.workflows.get(child.parentWorkflowId or "")
        t = self.rt.tasks.get(child.parentWorkflowTaskId or "")
        if parent is None or t is None or t.retried or t.subWorkflowId != child.workflowId:
            return
        self.command(parent, commands.resume_parent(parent, t, now, new_id=self.new_id, defs=self.rt.meta), "retry")

    def _remove_tasks(self, wf: Workflow, tasks: list[Task]) -> None:
        """Delete tasks from the execution (DO_WHILE ``keepLastN``)."""
        gone = {t.taskId for t in tasks}
        wf.tasks = [t for t in wf.tasks if t.taskId not in gone]
        wf.index = None  # the index only follows appends
        for tid in gone:
            self.rt.tasks.pop(tid, None)
            self.rt.dequeue(tid)
            self.rt.committer.delete_task(tid)

    # ------------------------------------------------------------------------------------------
    # ending

    def end(
        self,
        wf: Workflow,
        status: WorkflowStatus,
        reason: str | None,
        output: dict[str, Any] | None,
        now: int,
        *,
        cancel_open: bool = False,
        failed_task: Task | None = None,
        failure_workflow: bool = True,
    ) -> None:
        """End the workflow; open tasks are cancelled when it did not succeed (or when asked).

        An unsuccessful end starts the definition's ``failureWorkflow`` unless ``failure_workflow``
        is False (conductor-oss: not for the terminate API)."""
        rt = self.rt
        old = wf.status
        wf.status = status
        wf.reasonForIncompletion = reason
        wf.output = output if output is not None else {}
        wf.endTime = now
        wf.updateTime = now
        if not status.successful or cancel_open:
            for t in wf.tasks:
                if not t.status.terminal:
                    prev = t.status
                    t.status = TaskStatus.CANCELED
                    t.endTime = now
                    t.updateTime = now
                    rt.dequeue(t.taskId)
                    rt.task_changed(t, prev)
                    job = self._jobs.pop(t.taskId, None)
                    if job is not None:
                        job.cancel()
                    type_of(t.node.type).cancel(t, wf, self)
        failed = [t for t in wf.tasks if t.status in (TaskStatus.FAILED, TaskStatus.FAILED_WITH_TERMINAL_ERROR)]
        wf.failedReferenceTaskNames = sorted({t.referenceTaskName for t in failed}) or None
        wf.failedTaskNames = sorted({t.taskDefName for t in failed}) or None
        if not status.successful and failure_workflow and wf.definition.failureWorkflow:
            self._start_failure_workflow(wf, failed_task)
        rt.workflow_changed(wf, old)
        rt.metrics.workflow_ended(wf)
        self.timers.drop(wf.workflowId)
        rt.finish(wf.workflowId)
        if wf.parentWorkflowId:
            self._report_to_parent(wf)

    def _start_failure_workflow(self, wf: Workflow, failed_task: Task | None) -> None:
        """conductor-oss's failure workflow: the failed workflow's input plus what failed (6.10)."""
        defn = wf.definition
        name = defn.failureWorkflow or ""
        if name.startswith("$"):  # "$workflow.input.key": the third segment names an input key
            parts = name.split(".")
            value = wf.input.get(parts[2]) if len(parts) > 2 else None
            name = value if isinstance(value, str) else ""
        inp: dict[str, Any] = {
            **wf.input,
            "workflowId": wf.workflowId,
            "reason": wf.reasonForIncompletion,
            "failureStatus": wf.status.value,
            "failedWorkflow": wf.to_json(definition_json=self.rt.meta.snapshot_json.get(wf.snapshotId)),
        }
        if failed_task is not None:
            inp["failureTaskId"] = failed_task.taskId
        version = getattr(defn, "failureWorkflowVersion", None)
        request = StartWorkflowRequest.parse(
            {
                "name": name,
                "version": version,
                "input": inp,
                "correlationId": wf.correlationId,
                "taskToDomain": wf.taskToDomain or {},
            }
        )
        try:
            started = self.start(request)
            note: Any = started.workflowId
        except Exception as exc:  # recorded in the failed workflow's output, as upstream
            note = f"Error starting failure workflow {name}: {exc.message if isinstance(exc, ConductorLabError) else exc}"
            log.warning("workflow %s: %s", wf.workflowId, note)
        wf.output = {**wf.output, "conductor.failure_workflow": note}

    def terminate(self, wf: Workflow, reason: str | None) -> None:
        """TERMINATED by a request (no failure workflow, as conductor-oss)."""
        self.end(wf, WorkflowStatus.TERMINATED, reason, output_or_empty(wf), self.rt.clock(), failure_workflow=False)

    def _report_to_parent(self, child: Workflow) -> None:
        """A sub-workflow ended: its SUB_WORKFLOW task in the parent mirrors it (contract 4.12)."""
        parent = self.rt.workflows.get(child.parentWorkflowId or "")
        t = self.rt.tasks.get(child.parentWorkflowTaskId or "")
        if parent is None or t is None or t.status.terminal or parent.status.terminal:
            return
        if t.subWorkflowId != child.workflowId:
            return
        outcome = child_result(
            t,
            child.status,
            child.output,
            child.reasonForIncompletion,
            child.definition.name,
            child.definition.version,
            child.workflowId,
        )
        self.task_outcome(parent, t, outcome)

    # ------------------------------------------------------------------------------------------
    # effects and asynchronous work of system tasks

    def _effect(self, wf: Workflow, t: Task, effect: StartWorkflow | Publish) -> None:
        if isinstance(effect, StartWorkflow):
            self._start_from_task(wf, t, effect)
        elif self.events is not None:
            self.events.publish(effect.queue, effect.message_id, effect.payload)

    def _start_from_task(self, wf: Workflow, t: Task, effect: StartWorkflow) -> None:
        """Start a sub-workflow (linked to ``t``) or a START_WORKFLOW target; failures fail ``t``."""
        try:
            request: StartWorkflowRequest = StartWorkflowRequest.parse(effect.request)
            parent = (wf, effect.parent_task) if effect.parent_task is not None else None
            self.start(request, workflow_id=effect.workflow_id, parent=parent)
        except Exception as exc:  # no definition, invalid input: the task fails, the parent goes on
            message = exc.message if isinstance(exc, ConductorLabError) else str(exc)
            failed = Outcome(TaskStatus.FAILED, output={**t.outputData, "error": message}, reason=message)
            self.task_outcome(wf, t, failed, force=True)

    def _launch(self, wf: Workflow, t: Task) -> None:
        """Run a task type's asynchronous work (once per task at a time)."""
        loop = self.rt.loop
        if t.taskId in self._jobs or loop is None:
            return
        self._jobs[t.taskId] = loop.create_task(self._job(wf.workflowId, t))

    async def _job(self, workflow_id: str, t: Task) -> None:
        try:
            outcome = await type_of(t.node.type).run(t, self)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("task %s (%s) failed in its asynchronous work", t.taskId, t.taskType)
            outcome = Outcome(TaskStatus.FAILED, reason=f"{type(exc).__name__}: {exc}")
        finally:
            self._jobs.pop(t.taskId, None)
        wf = self.rt.workflows.get(workflow_id)
        if wf is None or self.rt.tasks.get(t.taskId) is not t:
            return
        self.task_outcome(wf, t, outcome)
        await self.rt.committer.barrier()

    def task_outcome(self, wf: Workflow, t: Task, outcome: Outcome, *, force: bool = False) -> None:
        """Apply an outcome that arrived from outside a decider pass, then decide the workflow."""
        if (t.status.terminal and not force) or wf.status.terminal:
            return
        rt = self.rt
        now = rt.clock()
        old = t.status
        for k, v in outcome.changes(t, now).items():
            setattr(t, k, v)
        t.updateTime = now
        if t.status.terminal:
            t.endTime = t.endTime or now
            rt.dequeue(t.taskId)
        rt.task_changed(t, old)
        if outcome.variables:
            wf.variables = {**wf.variables, **outcome.variables}
            rt.committer.workflow(wf)
        if outcome.run_async:
            self._launch(wf, t)
        self.run(wf, [t])
        self.timers.rearm()

    # ------------------------------------------------------------------------------------------
    # Services for task types (engine.tasks.base.Services)

    async def in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        assert self.rt.loop is not None
        return await self.rt.loop.run_in_executor(self._scripts, fn, *args)

    def terminate_child(self, workflow_id: str, reason: str) -> None:
        wf = self.rt.workflows.get(workflow_id)
        if wf is not None and not wf.status.terminal:
            self.terminate(wf, reason)
