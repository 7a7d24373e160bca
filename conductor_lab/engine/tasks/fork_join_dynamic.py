"""FORK_JOIN_DYNAMIC: a fork whose branches come from the input at run time (contract 4.10).

Three forms, checked in conductor-oss's order: ``forkTaskInputs`` (one ``forkTaskName`` /
``forkTaskType`` / ``forkTaskWorkflow`` task per element), ``dynamicForkTasksParam`` +
``dynamicForkTasksInputParamName`` (a list of WorkflowTask objects and a map of their inputs),
and the legacy ``dynamicForkJoinTasksParam`` (``{"dynamicTasks": [...]}``). The branch nodes are
created here: they are marked ``runtime`` so they are persisted with their tasks and survive a
restart. The JOIN that must follow waits on the last task of each branch.
"""

from __future__ import annotations

from typing import Any

from conductor_lab.engine.model import Task, TaskDef, TaskStatus, WorkflowTask
from conductor_lab.engine.params import to_java_string
from conductor_lab.engine.tasks.base import ScheduleContext, TaskType, TerminateWorkflow
from conductor_lab.engine.tasks.fork_join import FORK, join_after

SYSTEM_FORK_TYPES = frozenset(
    {"HTTP", "INLINE", "JSON_JQ_TRANSFORM", "SUB_WORKFLOW", "WAIT", "HUMAN", "NOOP", "SET_VARIABLE", "EVENT", "LAMBDA"}
)


class ForkJoinDynamic(TaskType):
    TYPE = "FORK_JOIN_DYNAMIC"
    built_in = True
    after_branch = "stop"

    def validate(self, node: WorkflowTask) -> list[str]:
        ip = node.inputParameters
        has_param = bool(getattr(node, "dynamicForkTasksParam", None) or getattr(node, "dynamicForkJoinTasksParam", None))
        if not has_param and "forkTaskInputs" not in ip:
            return [
                f"dynamicForkTasksParam or inputParameters.forkTaskInputs is required for taskType: "
                f"FORK_JOIN_DYNAMIC taskName: {node.name}"
            ]
        if getattr(node, "dynamicForkTasksParam", None) and not getattr(node, "dynamicForkTasksInputParamName", None):
            return [
                f"dynamicForkTasksInputParamName is required with dynamicForkTasksParam for taskType: "
                f"FORK_JOIN_DYNAMIC taskName: {node.name}"
            ]
        return []

    def schedule(self, node: WorkflowTask, ctx: ScheduleContext, iteration: int) -> list[Task]:
        join = join_after(
            node, ctx, "Dynamic join definition is not followed by a join task.  Check the workflow definition."
        )
        task_input = dict(ctx.input_for(node))
        nodes, inputs = self.branches(node, ctx, task_input)
        fork = ctx.new_task(node, FORK, TaskStatus.COMPLETED, iteration)
        fork.taskDefName = FORK
        fork.inputData = {
            **task_input,
            "forkedTasks": [n.taskReferenceName for n in nodes],
            "forkedTaskDefs": [n.to_json() for n in nodes],
        }
        tasks = [fork]
        join_on: list[str] = []
        seen: set[str] = set()
        for branch in nodes:
            ref = branch.taskReferenceName
            if ref in seen or ctx.task(ref) is not None:
                raise TerminateWorkflow(
                    f"No dynamic tasks could be created for the Workflow: {ctx.wf.definition.name}, "
                    f"Dynamic Fork Task: {ref} attempted to create a duplicate task reference name: {ref}"
                )
            seen.add(ref)
            extra = inputs.get(ref)
            if extra is not None and not isinstance(extra, dict):  # Java: ClassCastException
                raise TerminateWorkflow(
                    "Tasks could not be dynamically forked due to invalid input: the input of "
                    f"{ref} is not a map: {to_java_string(extra)}"
                )
            if extra:
                branch.inputParameters = {**branch.inputParameters, **extra}
            if branch.taskDefinition is None:
                registered = ctx.registered_task_def(branch.name)
                branch.taskDefinition = registered or TaskDef.adhoc(
                    branch.name or branch.type, simple=branch.type == "SIMPLE"
                )
            if node.optional:
                branch.optional = True
            branch.runtime = True
            created = ctx.schedule(branch, iteration)
            tasks.extend(created)
            join_on.append(created[-1].referenceTaskName if created else ref)
        join_tasks = ctx.schedule(join, iteration)
        for jt in join_tasks:
            if jt.node is join:
                jt.inputData = {**join.inputParameters, "joinOn": join_on}
        tasks.extend(join_tasks)
        return tasks

    def proceeds(self, task: Task) -> bool:
        return False  # the JOIN was scheduled with the fork

    # -- the three forms ----------------------------------------------------------------------

    def branches(
        self, node: WorkflowTask, ctx: ScheduleContext, task_input: dict[str, Any]
    ) -> tuple[list[WorkflowTask], dict[str, Any]]:
        simple = self._simple(node, ctx, task_input)
        if simple is not None:
            return simple
        param = getattr(node, "dynamicForkTasksParam", None)
        if param:
            raw = task_input.get(param)
            try:
                if not isinstance(raw, list):
                    raise ValueError("not a list")
                nodes = [WorkflowTask.parse(dict(item)) for item in raw]
                if any(not n.taskReferenceName for n in nodes):
                    raise ValueError("One of the tasks had a null/missing taskReferenceName")
            except Exception:
                raise TerminateWorkflow(
                    f"Input '{param}' is invalid. Cannot deserialize a list of Workflow Tasks from "
                    f"'{to_java_string(raw)}'"
                ) from None
            inputs = task_input.get(getattr(node, "dynamicForkTasksInputParamName", None) or "")
            if not isinstance(inputs, dict):
                raise TerminateWorkflow(
                    "Input to the dynamically forked tasks is not a map -> expecting a map of K,V  but found "
                    f"{to_java_string(inputs)}"
                )
            return nodes, {str(k): v for k, v in inputs.items()}
        legacy = getattr(node, "dynamicForkJoinTasksParam", None)
        value = task_input.get(legacy or "")
        dynamic = value.get("dynamicTasks") if isinstance(value, dict) else None
        if not isinstance(dynamic, list):
            raise TerminateWorkflow(
                f"Input '{legacy}' is invalid. Cannot deserialize a list of Workflow Tasks from '{to_java_string(value)}'"
            )
        nodes = []
        inputs_map: dict[str, Any] = {}
        for item in dynamic:
            if not isinstance(item, dict):
                continue
            spec: dict[str, Any] = {
                "name": item.get("taskName"),
                "taskReferenceName": item.get("referenceName"),
                "type": item.get("type") or "SIMPLE",
            }
            if item.get("workflowName"):
                spec["type"] = "SUB_WORKFLOW"
                spec["subWorkflowParam"] = {"name": item["workflowName"]}
            nodes.append(WorkflowTask.parse(spec))
            if isinstance(item.get("input"), dict):
                inputs_map[str(item.get("referenceName"))] = item["input"]
        return nodes, inputs_map

    def _simple(
        self, node: WorkflowTask, ctx: ScheduleContext, task_input: dict[str, Any]
    ) -> tuple[list[WorkflowTask], dict[str, Any]] | None:
        items = task_input.get("forkTaskInputs")
        if not isinstance(items, list):
            return None
        sub_name = task_input.get("forkTaskWorkflow")
        sub_version: int | None
        try:
            sub_version = int(str(task_input.get("forkTaskWorkflowVersion")))
        except ValueError:
            sub_version = None
        task_type = task_input.get("forkTaskType")
        name = task_input.get("forkTaskName")
        if task_type in SYSTEM_FORK_TYPES and name is None:
            name = task_type
        name = str(name) if name is not None else node.taskReferenceName
        task_type = str(task_type) if task_type else "SIMPLE"
        prefix = f"_{node.taskReferenceName}_" if self._forked_before(ctx) else "_"
        nodes: list[WorkflowTask] = []
        for i, item in enumerate(items):
            spec: dict[str, Any] = {}
            if isinstance(item, dict):
                spec.update({k: v for k, v in item.items() if k in WorkflowTask._NAMES})
                inputs = dict(item)
            else:
                inputs = {"input": item}
            if sub_name:
                spec.update(name=str(sub_name), type="SUB_WORKFLOW")
                sub: dict[str, Any] = {"name": str(sub_name), "version": sub_version}
                if isinstance(item, dict) and isinstance(item.get("taskToDomain"), dict):
                    sub["taskToDomain"] = item["taskToDomain"]
                spec["subWorkflowParam"] = sub
            else:
                spec.update(name=name, type=task_type)
            # conductor-oss: ``forkTaskName`` (default: this node's ref), for sub-workflow forks too
            spec["taskReferenceName"] = f"{prefix}{name}_{i}"
            spec["inputParameters"] = {**inputs, "__index": i}
            spec.pop("taskDefinition", None)
            nodes.append(WorkflowTask.parse(spec))
        return nodes, {}

    @staticmethod
    def _forked_before(ctx: ScheduleContext) -> bool:
        return any(t.node.type == "FORK_JOIN_DYNAMIC" for t in ctx.wf.tasks)


TASK = ForkJoinDynamic()
