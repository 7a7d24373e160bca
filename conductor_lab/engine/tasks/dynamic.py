"""DYNAMIC: a worker task whose name comes from the input named by ``dynamicTaskNameParam`` (contract 4.4).

As conductor-oss, the TaskDef used is the one attached to the DYNAMIC node (registered under the
node's own ``name``, else the ad-hoc default), not the resolved task's.
"""

from __future__ import annotations

from conductor_lab.engine.model import Task, WorkflowTask
from conductor_lab.engine.params import to_java_string as java_string
from conductor_lab.engine.tasks.base import ScheduleContext, TaskType, TerminateWorkflow
from conductor_lab.engine.tasks.simple import worker_task


class Dynamic(TaskType):
    TYPE = "DYNAMIC"
    kind = "worker"

    def validate(self, node: WorkflowTask) -> list[str]:
        if not node.dynamicTaskNameParam:
            return [f"dynamicTaskNameParam field is required for taskType: DYNAMIC taskName: {node.name}"]
        return []

    def schedule(self, node: WorkflowTask, ctx: ScheduleContext, iteration: int) -> list[Task]:
        task = worker_task(node, ctx, node.name, iteration)
        param = node.dynamicTaskNameParam or ""
        name = task.inputData.get(param)
        if name is None:
            raise TerminateWorkflow(
                f"Cannot map a dynamic task based on the parameter and input. Parameter= {param}, "
                f"input= {java_string(task.inputData)}"
            )
        task.taskType = task.taskDefName = java_string(name)
        return [task]


TASK = Dynamic()
