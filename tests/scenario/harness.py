"""Blueprint stories over the real HTTP API, in the style of conductor-oss's test harness.

A ``Story`` drives one test against a running server (the session ``http`` fixture: an
``httpx.Client`` whose base URL is the server's ``/api``)::

    story = Story(http)
    names = story.register("fork_join")       # tests/fixtures/blueprints/fork_join.json
    wid = story.start("fork_basic", {"x": 1})  # fixture names in, unique names used on the wire
    story.poll_and_complete("fj_b1", {"b": 1})
    assert story.summary(wid) == [
        ("fork", "FORK", "COMPLETED"), ("a1", story.name("fj_a1"), "SCHEDULED"),
        ("b1", story.name("fj_b1"), "COMPLETED"), ("join", "JOIN", "IN_PROGRESS"),
    ]
    story.poll_and_fail("fj_a1", "boom")
    story.wait_workflow(wid, "FAILED")

API: ``register(fixture) -> {fixture name: unique name}``, ``name(x)``, ``start(workflow, input,
**params) -> id``, ``workflow(id)``, ``tasks(id)``, ``task(id, ref)``, ``summary(id) -> [(ref,
taskType, status)]``, ``wait_workflow(id, status)``, ``wait_tasks(id, predicate)``,
``terminate(id, reason)``, ``poll(task_name, timeout_ms) -> task | None``, ``update(task, status,
output, reason)``, ``poll_and_complete(task_name, output)``, ``poll_and_fail(task_name, reason,
terminal=False)``. Task types in summaries are the unique names (``story.name("fj_a1")``).

Unique names. The session server is shared, so every workflow name and every worker task name
of a fixture gets this story's suffix (``name`` -> ``name_<uid>``) when it is registered:
workflow ``name``s, task definition ``name``s, the ``name`` of SIMPLE nodes (and of any node
that has a task definition in the fixture, e.g. a SUB_WORKFLOW node with a retry policy),
``subWorkflowParam.name`` (and inline ``workflowDefinition``s) naming a workflow of the fixture,
``startWorkflow.name`` inputs, and ``forkTaskName`` / ``forkTaskWorkflow`` inputs. Reference
names are never changed. Every method that takes a workflow or task name takes the fixture's
name and translates it; ``story.name("x")`` gives the unique name for names that a test passes in
workflow input (a DYNAMIC task name, dynamic fork task lists) and returns any other name with the
same suffix, so a test can name a task that no fixture mentions.

Task definitions. Fixtures declare task definitions in ``taskDefs``; every worker (SIMPLE) task
the fixture uses without declaring one gets ``DEFAULT_TASK_DEF`` (no retries, no timeouts), so a
failure story fails at once instead of waiting for the server's ad-hoc retry (3 x 60 s).
Pass ``auto_task_defs=False`` to ``register`` to keep the ad-hoc definitions.

Fixture file: ``{"taskDefs": [...], "workflows": [...]}`` or a single workflow definition.
Several versions of one workflow name may appear (each is registered as given).

Waiting. ``poll*`` long-poll the task queue; ``wait_*`` use ``wait_until`` with a deadline.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import wait_until

BLUEPRINTS = Path(__file__).resolve().parent.parent / "fixtures" / "blueprints"

#: task definition registered for worker tasks a fixture uses without declaring one
DEFAULT_TASK_DEF: dict[str, Any] = {
    "retryCount": 0,
    "retryLogic": "FIXED",
    "retryDelaySeconds": 0,
    "timeoutSeconds": 0,
    "timeoutPolicy": "TIME_OUT_WF",
    "responseTimeoutSeconds": 3600,
    "ownerEmail": "stories@example.com",
}

Summary = list[tuple[str, str, str]]

_NAME_INPUTS = ("forkTaskName", "forkTaskWorkflow")


class Story:
    """One test's view of the server: registration with unique names, workers and waits."""

    def __init__(self, http: httpx.Client, worker_id: str = "story-worker") -> None:
        self.http = http
        self.uid = uuid.uuid4().hex[:8]
        self.worker_id = worker_id
        #: fixture name -> unique name (workflows and worker tasks)
        self.names: dict[str, str] = {}

    # -- names ----------------------------------------------------------------------------------

    def name(self, name: str) -> str:
        """The unique name of a fixture workflow/task (or of any name, with this story's suffix)."""
        if name not in self.names:
            self.names[name] = f"{name}_{self.uid}"
        return self.names[name]

    # -- definitions ----------------------------------------------------------------------------

    def register(self, fixture: str, *, auto_task_defs: bool = True) -> dict[str, str]:
        """Register ``tests/fixtures/blueprints/<fixture>.json`` under unique names.

        Returns the mapping fixture name -> registered name for every workflow and worker task.
        """
        data = json.loads((BLUEPRINTS / f"{fixture}.json").read_text())
        if "workflows" not in data and "taskDefs" not in data:
            data = {"workflows": [data]}
        task_defs: list[dict[str, Any]] = copy.deepcopy(data.get("taskDefs") or [])
        workflows: list[dict[str, Any]] = copy.deepcopy(data.get("workflows") or [])

        workflow_names = {wd["name"] for wd in workflows}
        declared = {td["name"] for td in task_defs}
        worker_names = set(declared)
        for node in (n for wd in workflows for n in _nodes(wd.get("tasks") or [], inline=True)):
            if node.get("type", "SIMPLE") == "SIMPLE" and node.get("name"):
                worker_names.add(node["name"])
        for n in workflow_names | worker_names:
            self.name(n)
        if auto_task_defs:
            task_defs += [{**DEFAULT_TASK_DEF, "name": n} for n in sorted(worker_names - declared)]

        for td in task_defs:
            td["name"] = self.names[td["name"]]
        for wd in workflows:
            self._rename_workflow(wd, workflow_names, worker_names)

        if task_defs:
            r = self.http.post("/metadata/taskdefs", json=task_defs)
            assert r.status_code == 200, r.text
        for wd in workflows:
            wd.setdefault("ownerEmail", "stories@example.com")
            wd.setdefault("schemaVersion", 2)
            r = self.http.post("/metadata/workflow", json=wd)
            assert r.status_code == 200, r.text
        return {n: self.names[n] for n in sorted(workflow_names | worker_names)}

    def _rename_workflow(self, wd: dict[str, Any], workflows: set[str], workers: set[str]) -> None:
        if wd.get("name") in workflows:
            wd["name"] = self.names[wd["name"]]
        for node in _nodes(wd.get("tasks") or []):
            if node.get("name") in workers:
                node["name"] = self.names[node["name"]]
            swp = node.get("subWorkflowParam")
            if isinstance(swp, dict):
                if swp.get("name") in workflows:
                    swp["name"] = self.names[swp["name"]]
                inline = swp.get("workflowDefinition")
                if isinstance(inline, dict):
                    self._rename_workflow(inline, workflows, workers)
            inputs = node.get("inputParameters")
            if isinstance(inputs, dict):
                for key in _NAME_INPUTS:
                    if isinstance(inputs.get(key), str) and inputs[key] in workflows | workers:
                        inputs[key] = self.names[inputs[key]]
                request = inputs.get("startWorkflow")
                if isinstance(request, dict) and request.get("name") in workflows:
                    request["name"] = self.names[request["name"]]

    # -- workflows ------------------------------------------------------------------------------

    def start(self, workflow: str, workflow_input: dict[str, Any] | None = None, **params: Any) -> str:
        """``POST /workflow/{name}`` (``params``: version, correlationId, priority); the new id."""
        r = self.http.post(f"/workflow/{self.name(workflow)}", json=workflow_input or {}, params=params)
        assert r.status_code == 200, r.text
        return r.text

    def workflow(self, wid: str) -> dict[str, Any]:
        """``GET /workflow/{id}`` with tasks."""
        r = self.http.get(f"/workflow/{wid}", params={"includeTasks": True})
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def tasks(self, wid: str) -> list[dict[str, Any]]:
        """The workflow's tasks, in scheduling order."""
        return self.workflow(wid)["tasks"]  # type: ignore[no-any-return]

    def task(self, wid: str, ref: str) -> dict[str, Any]:
        """The latest task with this reference name (``ref__N`` inside loops)."""
        found = [t for t in self.tasks(wid) if t["referenceTaskName"] == ref]
        assert found, f"no task {ref!r} in {self.summary(wid)}"
        return found[-1]

    def summary(self, wid: str) -> Summary:
        """``[(referenceTaskName, taskType, status), ...]`` in scheduling order."""
        return summarize(self.tasks(wid))

    def wait_workflow(self, wid: str, status: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait until the workflow has ``status``; returns it (with tasks)."""
        last: dict[str, Any] = {}

        def reached() -> bool:
            last.update(self.workflow(wid))
            return last["status"] == status

        try:
            wait_until(reached, timeout)
        except AssertionError:
            raise AssertionError(
                f"workflow {wid} is {last.get('status')} ({last.get('reasonForIncompletion')}), not {status}: "
                f"{summarize(last.get('tasks', []))}"
            ) from None
        return last

    def wait_tasks(
        self, wid: str, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0, what: str = ""
    ) -> list[dict[str, Any]]:
        """Wait until ``predicate(tasks)`` holds; returns the tasks."""
        last: list[list[dict[str, Any]]] = [[]]

        def reached() -> bool:
            last[0] = self.tasks(wid)
            return predicate(last[0])

        try:
            wait_until(reached, timeout)
        except AssertionError:
            raise AssertionError(f"{what or 'task condition'} not met: {summarize(last[0])}") from None
        return last[0]

    def terminate(self, wid: str, reason: str = "terminated by story") -> None:
        """``DELETE /workflow/{id}?reason=...``."""
        r = self.http.delete(f"/workflow/{wid}", params={"reason": reason})
        assert r.status_code == 200, r.text

    # -- workers --------------------------------------------------------------------------------

    def poll(self, task_name: str, timeout_ms: int = 2000) -> dict[str, Any] | None:
        """Long-poll one task of ``task_name`` (a fixture name); None when none came."""
        r = self.http.get(
            f"/tasks/poll/batch/{self.name(task_name)}",
            params={"count": 1, "timeout": timeout_ms, "workerid": self.worker_id},
        )
        assert r.status_code == 200, r.text
        polled = r.json()
        return polled[0] if polled else None

    def update(self, task: dict[str, Any], status: str, output: dict[str, Any] | None = None,
               reason: str | None = None) -> None:
        """``POST /tasks`` with a TaskResult for a polled task."""
        result: dict[str, Any] = {
            "workflowInstanceId": task["workflowInstanceId"],
            "taskId": task["taskId"],
            "status": status,
            "outputData": output or {},
            "workerId": self.worker_id,
        }
        if reason is not None:
            result["reasonForIncompletion"] = reason
        r = self.http.post("/tasks", json=result)
        assert r.status_code == 200, r.text

    def poll_and_complete(self, task_name: str, output: dict[str, Any] | None = None) -> dict[str, Any]:
        """Poll one ``task_name`` task (it must come) and complete it; returns the polled task."""
        task = self.poll(task_name)
        assert task is not None, f"no {task_name} task to poll"
        self.update(task, "COMPLETED", output)
        return task

    def poll_and_fail(self, task_name: str, reason: str, *, terminal: bool = False) -> dict[str, Any]:
        """Poll one ``task_name`` task and fail it (``FAILED_WITH_TERMINAL_ERROR`` if ``terminal``)."""
        task = self.poll(task_name)
        assert task is not None, f"no {task_name} task to poll"
        self.update(task, "FAILED_WITH_TERMINAL_ERROR" if terminal else "FAILED", reason=reason)
        return task


def summarize(tasks: list[dict[str, Any]]) -> Summary:
    return [(t["referenceTaskName"], t["taskType"], t["status"]) for t in tasks]


def _nodes(tasks: list[Any], *, inline: bool = False) -> list[dict[str, Any]]:
    """Every workflow-task node, at any depth (``inline``: also in inline sub-workflow definitions)."""
    out: list[dict[str, Any]] = []
    stack = list(tasks)
    while stack:
        node = stack.pop(0)
        if not isinstance(node, dict):
            continue
        out.append(node)
        for case in (node.get("decisionCases") or {}).values():
            stack.extend(case)
        stack.extend(node.get("defaultCase") or [])
        for branch in node.get("forkTasks") or []:
            stack.extend(branch)
        stack.extend(node.get("loopOver") or [])
        swp = node.get("subWorkflowParam")
        if inline and isinstance(swp, dict) and isinstance(swp.get("workflowDefinition"), dict):
            stack.extend(swp["workflowDefinition"].get("tasks") or [])
    return out
