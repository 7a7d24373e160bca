"""EVENT: publish the task's output to an event queue; event handlers act on it (contract 10.2).

Sinks: ``conductor`` -> ``conductor:<workflowName>:<taskReferenceName>`` and ``conductor:<name>``
-> ``conductor:<workflowName>:<name>``, delivered in-process to the handlers registered for that
event (``engine/events.py``). External brokers (sqs, kafka, amqp, nats) are not part of this
server: such sinks fail the task with a clear reason. With ``asyncComplete`` the task stays
IN_PROGRESS until a handler's ``complete_task`` action (or any task update) completes it.
"""

from __future__ import annotations

from typing import Any

from conductor_lab.engine.model import Task, TaskStatus, WorkflowTask
from conductor_lab.engine.tasks.base import Outcome, Publish, ScheduleContext, TaskType

SUPPORTED_SINKS = ("conductor",)


def queue_name(sink: str, workflow_name: str, ref: str) -> str:
    """The event queue a sink publishes to; ValueError for sinks this server does not serve."""
    if sink == "conductor":
        return f"conductor:{workflow_name}:{ref}"
    if sink.startswith("conductor:"):
        return f"conductor:{workflow_name}:{sink.split(':', 1)[1]}"
    if sink.startswith("conductor"):
        raise ValueError(f"Invalid / Unsupported sink specified: {sink}")
    kind = sink.split(":", 1)[0]
    raise ValueError(
        f"Event queue type '{kind}' of sink {sink} is not supported by this server; supported: conductor"
    )


class Event(TaskType):
    TYPE = "EVENT"

    def validate(self, node: WorkflowTask) -> list[str]:
        if not node.sink:
            return [f"sink field is required for taskType: EVENT taskName: {node.name}"]
        if "${" not in node.sink:
            try:
                queue_name(node.sink, "wf", node.taskReferenceName or "ref")
            except ValueError as exc:
                return [f"sink: {exc} (taskName: {node.name})"]
        return []

    def schedule(self, node: WorkflowTask, ctx: ScheduleContext, iteration: int) -> list[Task]:
        task = ctx.new_task(node, self.TYPE, TaskStatus.SCHEDULED, iteration)
        # as conductor-oss's EventTaskMapper: the (evaluated) sink and asyncComplete are task input
        task.inputData = {
            **ctx.input_for(node, task.taskId),
            "sink": ctx.evaluate(node.sink, task.taskId),
            "asyncComplete": node.asyncComplete,
        }
        return [task]

    def execute(self, task: Task, ctx: ScheduleContext) -> Outcome | None:
        if task.status != TaskStatus.SCHEDULED:
            return None
        wf = ctx.wf
        sink = str(ctx.evaluate(task.inputData.get("sink") or task.node.sink or "", task.taskId))
        try:
            queue = queue_name(sink, wf.definition.name, task.referenceTaskName)
        except ValueError as exc:
            return Outcome(TaskStatus.FAILED, reason=str(exc))
        output: dict[str, Any] = {
            **task.inputData,
            "workflowInstanceId": wf.workflowId,
            "workflowType": wf.definition.name,
            "workflowVersion": wf.definition.version,
            "correlationId": wf.correlationId,
            "taskToDomain": wf.taskToDomain or {},
            "sink": sink,
            "asyncComplete": task.node.asyncComplete,
            "event_produced": queue,
        }
        status = TaskStatus.IN_PROGRESS if task.node.asyncComplete else TaskStatus.COMPLETED
        return Outcome(status, output=output, effects=[Publish(queue, task.taskId, output)])


TASK = Event()
