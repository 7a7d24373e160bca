"""Error audit of the task, workflow and metadata resources against the conductor-oss source.

One row per (endpoint, case): the request, the status conductor-oss answers and its exact message,
or the ``validationErrors`` entry of a 400 from bean validation. The comment above each row names
the Java file and line the answer comes from (conductor-oss HEAD; ``.../`` stands for
``src/main/java/com/netflix/conductor``). How exceptions become statuses:
rest/.../rest/controllers/ApplicationExceptionMapper.java:51-79 (exact class -> status, else 500) and
ValidationExceptionMapper.java:56-97 (ConstraintViolationException -> 400 with validationErrors, no
``instance``; ``invalidValue`` is ``toString()`` of a ``java.lang`` value, :105-138).

Rows marked DELIBERATE keep a documented difference (docs/compat.md, "Errors"): where conductor-oss
answers 500 for what is plainly a client mistake, or its SQL store wraps a NotFoundException into a 500.

Conventions of this server kept throughout (docs/compat.md): a ``validationErrors`` path names the
service method's parameter (``registerTaskDef.taskDefinitions[0].name``) where the shipped server,
compiled without ``-parameters``, says ``arg0``; Spring's long messages (``Required request body is
missing: public void ...``) are matched on their leading, Spring-worded part.

Tokens ``<R>``, ``<wf>``, ... in a row are replaced by the fixture's ids and names (see ``env``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.server.util import assert_error, get_workflow, poll_one, simple_task, uid, workflow_def

VALIDATION = "Validation failed, check below errors for detail."
NO_BODY = object()


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str
    status: int
    message: str | None = None  # the exact message
    prefix: str | None = None  # the message starts with this (Spring's long messages)
    violation: dict[str, Any] | None = None  # one entry of validationErrors (a 400)
    json: Any = NO_BODY
    content: bytes | None = None
    params: dict[str, Any] = field(default_factory=dict)
    reply: Any = NO_BODY  # 2xx: the JSON answer, or the text ("" for an empty body)


# ------------------------------------------------------------------------------------------------
# Fixture: definitions and workflows in each state


@pytest.fixture(scope="module")
def env(http: httpx.Client) -> dict[str, str]:
    td, td_nr, td_gone = uid("audit_task"), uid("audit_task_nr"), uid("audit_task_gone")
    wf, wf_nr, gone = uid("audit_wf"), uid("audit_wf_nr"), uid("audit_inline")
    r = http.post("/metadata/taskdefs", json=[{"name": n, "responseTimeoutSeconds": 30} for n in (td, td_nr)])
    assert r.status_code == 200, r.text
    for name, task_type, extra in ((wf, td, {}), (wf_nr, td_nr, {"restartable": False})):
        r = http.post("/metadata/workflow", json=workflow_def(name, [simple_task(task_type, "t1")], **extra))
        assert r.status_code == 200, r.text

    def start(name: str, **body: Any) -> str:
        r = http.post("/workflow", json={"name": name, "input": {}, **body})
        assert r.status_code == 200, r.text
        return r.text

    def run_to_completion(name: str, task_type: str) -> str:
        wid = start(name)
        task = poll_one(http, task_type, timeout=2000)
        assert task["workflowInstanceId"] == wid
        done = {"workflowInstanceId": wid, "taskId": task["taskId"], "status": "COMPLETED"}
        assert http.post("/tasks", json=done).status_code == 200
        assert get_workflow(http, wid)["status"] == "COMPLETED"
        return wid

    completed = run_to_completion(wf, td)  # first: its task is the only one of its type queued
    non_restartable = run_to_completion(wf_nr, td_nr)
    running, paused, terminated = start(wf), start(wf), start(wf)
    assert http.put(f"/workflow/{paused}/pause").status_code == 200
    assert http.delete(f"/workflow/{terminated}").status_code == 200
    inline = start(gone, workflowDef=workflow_def(gone, [simple_task(td_gone, "g1")]))  # never registered
    assert http.delete(f"/workflow/{inline}").status_code == 200
    return {
        "wf": wf,
        "wf_nr": wf_nr,
        "td": td,
        "R": running,
        "P": paused,
        "C": completed,
        "T": terminated,
        "NR": non_restartable,
        "G": inline,
        "task_R": get_workflow(http, running)["tasks"][0]["taskId"],
        "task_C": get_workflow(http, completed)["tasks"][0]["taskId"],
        "missing": uid("no_such"),
    }


def fill(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, v in env.items():
            value = value.replace(f"<{key}>", v)
        return value
    if isinstance(value, dict):
        return {fill(k, env): fill(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, env) for v in value]
    return value


def check(http: httpx.Client, env: dict[str, str], case: Case) -> None:
    kwargs: dict[str, Any] = {"params": fill(case.params, env)}
    if case.json is not NO_BODY:
        kwargs["json"] = fill(case.json, env)
    elif case.content is not None:
        kwargs["content"] = case.content
        kwargs["headers"] = {"Content-Type": "application/json"}
    r = http.request(case.method, fill(case.path, env), **kwargs)
    if case.status < 400:
        assert r.status_code == case.status, (r.status_code, r.text)
        if case.reply is not NO_BODY:
            expected = fill(case.reply, env)
            assert (r.text if isinstance(expected, str) else r.json()) == expected, r.text
        return
    body = assert_error(r, case.status)
    if case.violation is not None:
        assert body["message"] == VALIDATION and "instance" not in body, body
        assert fill(case.violation, env) in body["validationErrors"], body
        return
    assert "instance" in body and "validationErrors" not in body, body
    if case.message is not None:
        assert body["message"] == fill(case.message, env), body
    if case.prefix is not None:
        assert body["message"].startswith(fill(case.prefix, env)), body


def cases(*rows: Case) -> Any:
    return pytest.mark.parametrize("case", rows, ids=[c.id for c in rows])


def no_workflow(method: str, path: str, **kw: Any) -> Case:
    # core/.../core/dal/ExecutionDAOFacade.java:176-185 (getWorkflowModelFromDataStore): NotFoundException
    return Case(f"{method} {path}", method, path, 404, "No such workflow found by id: <missing>", **kw)


BAD_TASK_DEF = {"name": "audit_bad_task", "retryCount": 1}


def task_def(**fields: Any) -> list[dict[str, Any]]:
    return [{**BAD_TASK_DEF, **fields}]


def wf_def(tasks: Any = "default", **fields: Any) -> dict[str, Any]:
    nodes = [simple_task("<td>", "t1")] if tasks == "default" else tasks
    return {"name": "audit_bad_wf", "version": 1, "schemaVersion": 2, "tasks": nodes, **fields}


def violation(path: str, message: str, invalid: str | None = None) -> dict[str, Any]:
    item = {"path": path, "message": message}
    if invalid is not None:
        item["invalidValue"] = invalid
    return item


# ------------------------------------------------------------------------------------------------
# Metadata: unknown task / workflow definitions, conflicts, bodies

METADATA_NOT_FOUND = cases(
    # core/.../service/MetadataServiceImpl.java:116-118 (getTaskDef)
    Case("get taskdef", "GET", "/metadata/taskdefs/<missing>", 404, "No such taskType found by name: <missing>"),
    # core/.../service/MetadataServiceImpl.java:84-86 (updateTaskDef)
    Case("put taskdef", "PUT", "/metadata/taskdefs", 404, "No such task by name <missing>",
         json={"name": "<missing>", "responseTimeoutSeconds": 10}),
    # DELIBERATE status: sqlite-persistence/.../sqlite/dao/metadata/SqliteTaskMetadataDAO.java:64 throws
    # NotFoundException("No such task definition") inside a transaction, SqliteBaseDAO.java:99-104 wraps it
    # into a NonTransientException: 500 upstream (postgres likewise); the text is kept, the status is 404
    Case("delete taskdef", "DELETE", "/metadata/taskdefs/<missing>", 404, "No such task definition"),
    # core/.../service/MetadataServiceImpl.java:154-165 (getWorkflowDef: "%d" of a null version is "null")
    Case("get workflow def", "GET", "/metadata/workflow/<missing>", 404,
         "No such workflow found by name: <missing>, version: null"),
    Case("get workflow def version", "GET", "/metadata/workflow/<wf>", 404,
         "No such workflow found by name: <wf>, version: 9", params={"version": 9}),
    # core/.../dao/MetadataDAO.java:114-127 (getWorkflowVersions: a filter over all definitions, no error)
    Case("versions of unknown", "GET", "/metadata/workflow/<missing>/versions", 200, reply=[]),
    # DELIBERATE status: SqliteWorkflowMetadataDAO.java:91-95 NotFoundException wrapped by SqliteBaseDAO.java:99-104 (500)
    Case("delete workflow def", "DELETE", "/metadata/workflow/<missing>/1", 404,
         "No such workflow definition: <missing> version: 1"),
    Case("delete workflow def version", "DELETE", "/metadata/workflow/<wf>/9", 404,
         "No such workflow definition: <wf> version: 9"),
    # rest/.../rest/controllers/MetadataResource.java:62-69 (create: findWorkflowDef, then ConflictException)
    Case("create existing", "POST", "/metadata/workflow", 409, "Workflow with <wf>.1 already exists!",
         json=workflow_def("<wf>", [simple_task("<td>", "t1")])),
    # MetadataResource.java:62-69: the 409 comes before validation (registerWorkflowDef is never called)
    Case("create existing invalid", "POST", "/metadata/workflow", 409, "Workflow with <wf>.1 already exists!",
         json=workflow_def("<wf>", [])),
)


@METADATA_NOT_FOUND
def test_metadata_unknown_definitions(http: httpx.Client, env: dict[str, str], case: Case) -> None:
    check(http, env, case)


METADATA_BODIES = cases(
    # Spring HttpMessageNotReadableException -> ApplicationExceptionMapper.java:66 default 500
    Case("taskdefs no body", "POST", "/metadata/taskdefs", 500, prefix="Required request body is missing",
         content=b""),
    Case("taskdefs object", "POST", "/metadata/taskdefs", 500, prefix="JSON parse error: Cannot deserialize value",
         json={"name": "x"}),
    Case("taskdefs malformed", "POST", "/metadata/taskdefs", 500, prefix="JSON parse error", content=b"[{"),
    Case("put taskdef array", "PUT", "/metadata/taskdefs", 500, prefix="JSON parse error: Cannot deserialize value",
         json=[{"name": "x"}]),
    Case("workflow def array", "POST", "/metadata/workflow", 500, prefix="JSON parse error: Cannot deserialize value",
         json=[]),
    Case("workflow defs object", "PUT", "/metadata/workflow", 500,
         prefix="JSON parse error: Cannot deserialize value", json={}),
    # core/.../service/MetadataService.java:38-41 (registerTaskDef: @Size(min = 1, message = "TaskDefList is empty"))
    Case("taskdefs empty", "POST", "/metadata/taskdefs", 400, json=[],
         violation=violation("registerTaskDef.taskDefinitions", "TaskDefList is empty")),
    # MetadataService.java:72-76 (updateWorkflowDef(List): @Size(min = 1), List<@NotNull WorkflowDef>)
    Case("workflow defs empty", "PUT", "/metadata/workflow", 400, json=[],
         violation=violation("updateWorkflowDef.workflowDefList", "WorkflowDefList is empty")),
    Case("workflow defs null element", "PUT", "/metadata/workflow", 400, json=[None],
         violation=violation("updateWorkflowDef.workflowDefList[0].<list element>", "WorkflowDef cannot be null")),
    # Jackson InvalidFormatException for an enum field -> 500 (ApplicationExceptionMapper.java:55); DELIBERATE
    # wording: Jackson's text without "JSON parse error: " and the source location
    Case("taskdef bad enum", "POST", "/metadata/taskdefs", 500, json=task_def(timeoutPolicy="SOMETIMES"),
         prefix="Cannot deserialize value of type `com.netflix.conductor.common.metadata.tasks.TaskDef$TimeoutPolicy` "
         'from String "SOMETIMES": not one of the values accepted for Enum class'),
)


@METADATA_BODIES
def test_metadata_bad_bodies(http: httpx.Client, env: dict[str, str], case: Case) -> None:
    check(http, env, case)


P0 = "registerTaskDef.taskDefinitions[0]"

TASK_DEF_VALIDATION = cases(
    # common/.../common/metadata/tasks/TaskDef.java:56 (@NotEmpty name)
    Case("name missing", "POST", "/metadata/taskdefs", 400, json=[{"retryCount": 1}],
         violation=violation(f"{P0}.name", "TaskDef name cannot be null or empty")),
    Case("name empty", "POST", "/metadata/taskdefs", 400, json=task_def(name=""),
         violation=violation(f"{P0}.name", "TaskDef name cannot be null or empty", "")),
    # TaskDef.java:64 (@Min(0) retryCount, "{value}" is the bound)
    Case("retryCount", "POST", "/metadata/taskdefs", 400, json=task_def(retryCount=-1),
         violation=violation(f"{P0}.retryCount", "TaskDef retryCount: 0 must be >= 0", "-1")),
    # TaskDef.java:92-95 (@Min(1) responseTimeoutSeconds, "${validatedValue}")
    Case("responseTimeoutSeconds", "POST", "/metadata/taskdefs", 400, json=task_def(responseTimeoutSeconds=0),
         violation=violation(f"{P0}.responseTimeoutSeconds",
                             "TaskDef responseTimeoutSeconds: 0 should be minimum 1 second", "0")),
    # common/.../common/constraints/TaskTimeoutConstraint.java:56-64 (class level: the bean's path, no value)
    Case("response > timeout", "POST", "/metadata/taskdefs", 400,
         json=task_def(responseTimeoutSeconds=20, timeoutSeconds=10),
         violation=violation(P0, "TaskDef: audit_bad_task responseTimeoutSeconds: 20 must be less than "
                             "timeoutSeconds: 10")),
    # TaskTimeoutConstraint.java:68-79
    Case("timeout > total", "POST", "/metadata/taskdefs", 400,
         json=task_def(responseTimeoutSeconds=5, timeoutSeconds=20, totalTimeoutSeconds=10),
         violation=violation(P0, "TaskDef: audit_bad_task timeoutSeconds: 20 must be less than or equal to "
                             "totalTimeoutSeconds: 10")),
    # TaskDef.java:125 (@Min(0) pollTimeoutSeconds)
    Case("pollTimeoutSeconds", "POST", "/metadata/taskdefs", 400, json=task_def(pollTimeoutSeconds=-1),
         violation=violation(f"{P0}.pollTimeoutSeconds", "TaskDef pollTimeoutSeconds: 0 must be >= 0", "-1")),
    # TaskDef.java:129 (@Min(1) backoffScaleFactor)
    Case("backoffScaleFactor", "POST", "/metadata/taskdefs", 400, json=task_def(backoffScaleFactor=0),
         violation=violation(f"{P0}.backoffScaleFactor", "Backoff scale factor. Applicable for LINEAR_BACKOFF", "0")),
    # TaskDef.java:133 (@Min(0) maxRetryDelaySeconds)
    Case("maxRetryDelaySeconds", "POST", "/metadata/taskdefs", 400, json=task_def(maxRetryDelaySeconds=-1),
         violation=violation(f"{P0}.maxRetryDelaySeconds", "TaskDef maxRetryDelaySeconds: 0 must be >= 0", "-1")),
    # TaskDef.java:137 (@Min(0) backoffJitterMs)
    Case("backoffJitterMs", "POST", "/metadata/taskdefs", 400, json=task_def(backoffJitterMs=-1),
         violation=violation(f"{P0}.backoffJitterMs", "TaskDef backoffJitterMs: 0 must be >= 0", "-1")),
    # TaskDef.java:144 (@Min(0) totalTimeoutSeconds)
    Case("totalTimeoutSeconds", "POST", "/metadata/taskdefs", 400, json=task_def(totalTimeoutSeconds=-1),
         violation=violation(f"{P0}.totalTimeoutSeconds", "TaskDef totalTimeoutSeconds: 0 must be >= 0", "-1")),
    # List<@Valid TaskDef> (MetadataService.java:41): every element is validated, not only the first
    Case("second element", "POST", "/metadata/taskdefs", 400, json=[BAD_TASK_DEF, {"retryCount": -1}],
         violation=violation("registerTaskDef.taskDefinitions[1].retryCount", "TaskDef retryCount: 0 must be >= 0",
                             "-1")),
    # DELIBERATE: TaskDef.java:68 puts only @NotNull on the primitive timeoutSeconds (never fails); a
    # negative one is refused here
    Case("timeoutSeconds negative", "POST", "/metadata/taskdefs", 400, json=task_def(timeoutSeconds=-1),
         violation=violation(f"{P0}.timeoutSeconds", "TaskDef timeoutSeconds must be >= 0", "-1")),
    # MetadataService.java:46 (updateTaskDef: @Valid TaskDef taskDefinition)
    Case("put invalid", "PUT", "/metadata/taskdefs", 400, json={"name": "<td>", "retryCount": -1},
         violation=violation("updateTaskDef.taskDefinition.retryCount", "TaskDef retryCount: 0 must be >= 0", "-1")),
    # the validating proxy runs before MetadataServiceImpl.java:84-86: invalid and unknown is a 400
    Case("put invalid unknown", "PUT", "/metadata/taskdefs", 400, json={"name": "<missing>", "retryCount": -1},
         violation=violation("updateTaskDef.taskDefinition.retryCount", "TaskDef retryCount: 0 must be >= 0", "-1")),
)


@TASK_DEF_VALIDATION
def test_task_def_validation(http: httpx.Client, env: dict[str, str], case: Case) -> None:
    check(http, env, case)


W = "registerWorkflowDef.workflowDef"

WORKFLOW_DEF_VALIDATION = cases(
    # common/.../common/metadata/workflow/WorkflowDef.java:41 (@NotEmpty name)
    Case("name missing", "POST", "/metadata/workflow", 400, json={"tasks": [simple_task("<td>", "t1")]},
         violation=violation(f"{W}.name", "WorkflowDef name cannot be null or empty")),
    # WorkflowDef.java:53-55 (@NotEmpty tasks)
    Case("tasks empty", "POST", "/metadata/workflow", 400, json=wf_def([]),
         violation=violation(f"{W}.tasks", "WorkflowTask list cannot be empty")),
    # WorkflowDef.java:67-68 (@Min(2) @Max(2) schemaVersion: "{value}" is the bound, 2)
    Case("schemaVersion", "POST", "/metadata/workflow", 400, json=wf_def(schemaVersion=1),
         violation=violation(f"{W}.schemaVersion", "workflowDef schemaVersion: 2 is only supported", "1")),
    # common/.../common/constraints/TaskReferenceNameUniqueConstraint.java:70-78 (class level: the bean's path)
    Case("duplicate refs", "POST", "/metadata/workflow", 400,
         json=wf_def([simple_task("<td>", "t1"), simple_task("<td>", "t1")]),
         violation=violation(W, "taskReferenceName: t1 should be unique across tasks for a given "
                             "workflowDefinition: audit_bad_wf")),
    # common/.../common/utils/ConstraintParamUtil.java:123-133 via TaskReferenceNameUniqueConstraint.java:90-110
    Case("undefined reference", "POST", "/metadata/workflow", 400,
         json=wf_def([simple_task("<td>", "t1", x="${nope.output.y}")]),
         violation=violation(W, "taskReferenceName: nope for given task: <td> input value: x of input parameter: "
                             "${nope.output.y} is not defined in workflow definition.")),
    # common/.../common/metadata/workflow/WorkflowTask.java:43 (@NotEmpty name)
    Case("task name missing", "POST", "/metadata/workflow", 400,
         json=wf_def([{"taskReferenceName": "t1", "type": "SIMPLE"}]),
         violation=violation(f"{W}.tasks[0].name", "WorkflowTask name cannot be empty or null")),
    # WorkflowTask.java:47 (@NotEmpty taskReferenceName)
    Case("task ref missing", "POST", "/metadata/workflow", 400, json=wf_def([{"name": "<td>", "type": "SIMPLE"}]),
         violation=violation(f"{W}.tasks[0].taskReferenceName",
                             "WorkflowTask taskReferenceName name cannot be empty or null")),
    # WorkflowTask.java:107 (@PositiveOrZero startDelay: Hibernate Validator's default message)
    Case("startDelay", "POST", "/metadata/workflow", 400, json=wf_def([{**simple_task("<td>", "t1"), "startDelay": -1}]),
         violation=violation(f"{W}.tasks[0].startDelay", "must be greater than or equal to 0", "-1")),
    # MetadataResource.java:66-67 -> MetadataService.java:67 (updateWorkflowDef: @Valid WorkflowDef)
    Case("overwrite invalid", "POST", "/metadata/workflow", 400, params={"overwrite": "true"},
         json=workflow_def("<wf>", []),
         violation=violation("updateWorkflowDef.workflowDef.tasks", "WorkflowTask list cannot be empty")),
    # MetadataResource.java:75-76 -> MetadataService.java:116-117 (validateWorkflowDef: @Valid)
    Case("validate", "POST", "/metadata/workflow/validate", 400, json={"tasks": [simple_task("<td>", "t1")]},
         violation=violation("validateWorkflowDef.workflowDef.name", "WorkflowDef name cannot be null or empty")),
    # MetadataService.java:72-76 (List<@NotNull @Valid WorkflowDef> workflowDefList)
    Case("bulk update", "PUT", "/metadata/workflow", 400, json=[wf_def(), {"tasks": [simple_task("<td>", "t1")]}],
         violation=violation("updateWorkflowDef.workflowDefList[1].name", "WorkflowDef name cannot be null or empty")),
)


@WORKFLOW_DEF_VALIDATION
def test_workflow_def_validation(http: httpx.Client, env: dict[str, str], case: Case) -> None:
    check(http, env, case)


# ------------------------------------------------------------------------------------------------
# Workflows: unknown ids, starts, wrong states, bulk

UNKNOWN_WORKFLOW = cases(
    no_workflow("GET", "/workflow/<missing>"),
    no_workflow("GET", "/workflow/<missing>/status"),
    no_workflow("GET", "/workflow/<missing>/tasks"),
    no_workflow("DELETE", "/workflow/<missing>"),
    no_workflow("DELETE", "/workflow/<missing>/remove"),
    no_workflow("DELETE", "/workflow/<missing>/terminate-remove"),
    no_workflow("PUT", "/workflow/<missing>/pause"),
    no_workflow("PUT", "/workflow/<missing>/resume"),
    no_workflow("PUT", "/workflow/<missing>/skiptask/t1"),
    no_workflow("POST", "/workflow/<missing>/rerun", json={}),
    no_workflow("POST", "/workflow/<missing>/restart"),
    no_workflow("POST", "/workflow/<missing>/retry"),
    no_workflow("POST", "/workflow/<missing>/resetcallbacks"),
    no_workflow("PUT", "/workflow/decide/<missing>"),
    # core/.../core/execution/WorkflowExecutorOps.java:929-930 (updateTask reads the workflow first)
    no_workflow("POST", "/tasks", json={"workflowInstanceId": "<missing>", "taskId": "<task_R>", "status": "COMPLETED"}),
    no_workflow("POST", "/tasks/update-v2",
                json={"workflowInstanceId": "<missing>", "taskId": "<task_R>", "status": "COMPLETED"}),
    # core/.../service/TaskServiceImpl.java:196-197 (findPendingBlockingTask -> getExecutionStatus)
    no_workflow("POST", "/tasks/<missing>/COMPLETED/signal", json={}),
    no_workflow("POST", "/tasks/<missing>/COMPLETED/signal/sync", json={}),
    # TaskServiceImpl.java:156-159 + ExecutionService.java:343-365: no tasks for an unknown workflow, no update
    Case("update by ref", "POST", "/tasks/<missing>/t1/COMPLETED", 200, json={}, reply=""),
    # rest/.../rest/controllers/TaskResource.java:138-143
    Case("update by ref sync", "POST", "/tasks/<missing>/t1/COMPLETED/sync", 404,
         "Found no running task t1 of workflow <missing> to update", json={}),
    # core/.../service/WorkflowBulkServiceImpl.java:52-63: per id, the exception's message
    Case("bulk pause", "PUT", "/workflow/bulk/pause", 200, json=["<missing>"],
         reply={"bulkSuccessfulResults": [], "bulkErrorResults": {"<missing>": "No such workflow found by id: <missing>"}}),
    # WorkflowServiceImpl.java:223-238: with the default version=1 (WorkflowResource.java:238) no definition lookup
    Case("running of unknown", "GET", "/workflow/running/<missing>", 200, reply=[]),
)


@UNKNOWN_WORKFLOW
def test_unknown_workflow_id(http: httpx.Client, env: dict[str, str], case: Case) -> None:
    check(http, env, case)


S = "startWorkflow.startWorkflowRequest"

START = cases(
    # core/.../core/metadata/MetadataMapperService.java:59-73 (lookupForWorkflowDefinition)
    Case("unknown name", "POST", "/workflow", 404, "No such workflow defined. name=<missing>, version=null",
         json={"name": "<missing>"}),
    Case("unknown version", "POST", "/workflow", 404, "No such workflow defined. name=<wf>, version=9",
         json={"name": "<wf>", "version": 9}),
    # common/.../common/metadata/workflow/StartWorkflowRequest.java:30 (@NotNull name; WorkflowService.java:45-47 @Valid)
    Case("name missing", "POST", "/workflow", 400, json={"input": {}},
         violation=violation(f"{S}.name", "Workflow name cannot be null or empty")),
    Case("name missing inline def", "POST", "/workflow", 400,
         json={"input": {}, "workflowDef": workflow_def("x", [simple_task("<td>", "t1")])},
         violation=violation(f"{S}.name", "Workflow name cannot be null or empty")),
    # MetadataMapperService.java:85-89 (Utils.checkArgument: IllegalArgumentException -> 400, not a violation)
    Case("name blank", "POST", "/workflow", 400, "Workflow name must be specified when searching for a definition",
         json={"name": ""}),
    # StartWorkflowRequest.java:53-54 (@Min(0) @Max(99) priority, "${validatedValue}")
    Case("priority high", "POST", "/workflow", 400, json={"name": "<wf>", "priority": 100},
         violation=violation(f"{S}.priority", "priority: 100 should be maximum 99", "100")),
    Case("priority low", "POST", "/workflow", 400, json={"name": "<wf>", "priority": -1},
         violation=violation(f"{S}.priority", "priority: -1 should be minimum 0", "-1")),
    # bean validation (the proxy) comes before the definition lookup
    Case("priority before lookup", "POST", "/workflow", 400, json={"name": "<missing>", "priority": 100},
         violation=violation(f"{S}.priority", "priority: 100 should be maximum 99", "100")),
    # StartWorkflowRequest.java:46-47 (@Valid WorkflowDef workflowDef)
    Case("inline def invalid", "POST", "/workflow", 400, json={"name": "x", "workflowDef": wf_def([])},
         violation=violation(f"{S}.workflowDef.tasks", "WorkflowTask list cannot be empty")),
    # WorkflowExecutorOps.java:2746-2762 -> 2799-2809 (validateWorkflow after the lookup: IllegalArgumentException)
    Case("null input", "POST", "/workflow", 400, "NULL input passed when starting workflow",
         json={"name": "<wf>", "input": None}),
    Case("null input unknown name", "POST", "/workflow", 404, "No such workflow defined. name=<missing>, version=null",
         json={"name": "<missing>", "input": None}),
    Case("no body", "POST", "/workflow", 500, prefix="Required request body is missing", content=b""),
    Case("array body", "POST", "/workflow", 500, prefix="JSON parse error: Cannot deserialize value", json=[1]),
    # core/.../service/WorkflowServiceImpl.java:113-123 -> MetadataServiceImpl.java:154-165
    Case("by name unknown", "POST", "/workflow/<missing>", 404, "No such workflow found by name: <missing>, version: null",
         json={}),
    Case("by name unknown version", "POST", "/workflow/<wf>", 404, "No such workflow found by name: <wf>, version: 9",
         json={}, params={"version": 9}),
    # core/.../service/WorkflowService.java:60-67 (@Min(0) @Max(99) Integer priority)
    Case("by name priority high", "POST", "/workflow/<wf>", 400, json={}, params={"priority": 100},
         violation=violation("startWorkflow.priority", "99 is the maximum priority value", "100")),
    Case("by name priority low", "POST", "/workflow/<wf>", 400, json={}, params={"priority": -1},
         violation=violation("startWorkflow.priority", "0 is the minimum priority value", "-1")),
    Case("by name priority before lookup", "POST", "/workflow/<missing>", 400, json={}, params={"priority": 100},
         violation=violation("startWorkflow.priority", "99 is the maximum priority value", "100")),
    Case("by name array body", "POST", "/workflow/<wf>", 500, prefix="JSON parse error: Cannot deserialize value",
         json=[1]),
    # WorkflowResource.java:113-132 (version 0 -> null) -> MetadataMapperService.java:72-73
    Case("execute unknown", "POST", "/workflow/execute/<missing>/1", 404,
         "No such workflow defined. name=<missing>, version=1", json={}),
    # core/.../service/WorkflowTestService.java:67-72 -> WorkflowServiceImpl.startWorkflow
    Case("test unknown", "POST", "/workflow/test", 404, "No such workflow defined. name=<missing>, version=null",
         json={"name": "<missing>"}),
)


@START
def test_start_workflow_errors(http: httpx.Client, env: dict[str, str], case: Case) -> None:
    check(http, env, case)


WRONG_STATE = cases(  # contract 7.15, row by row
    # WorkflowExecutorOps.java:1583-1588 (toShortString) / 1589-1590 (already paused: no-op)
    Case("pause terminated", "PUT", "/workflow/<T>/pause", 409, "Workflow <wf>.1/<T> has ended, status cannot be updated."),
    Case("pause completed", "PUT", "/workflow/<C>/pause", 409, "Workflow <wf>.1/<C> has ended, status cannot be updated."),
    Case("pause paused", "PUT", "/workflow/<P>/pause", 200, reply=""),
    # WorkflowExecutorOps.java:1619-1626 (IllegalStateException -> 500)
    Case("resume running", "PUT", "/workflow/<R>/resume", 500,
         "The workflow <R> is not PAUSED so cannot resume. Current status is RUNNING"),
    Case("resume completed", "PUT", "/workflow/<C>/resume", 500,
         "The workflow <C> is not PAUSED so cannot resume. Current status is COMPLETED"),
    # WorkflowExecutorOps.java:758-766
    Case("terminate completed", "DELETE", "/workflow/<C>", 409, "Cannot terminate a COMPLETED workflow."),
    Case("terminate terminated", "DELETE", "/workflow/<T>", 200, reply=""),
    # WorkflowServiceImpl.java:209-211 (terminate first)
    Case("terminate-remove completed", "DELETE", "/workflow/<C>/terminate-remove", 409,
         "Cannot terminate a COMPLETED workflow."),
    # WorkflowExecutorOps.java:192-199 (WorkflowModel.toString(): name.version/id.STATUS, WorkflowModel.java:494-497)
    Case("restart running", "POST", "/workflow/<R>/restart", 409,
         "Workflow: <wf>.1/<R>.RUNNING is not in terminal state, unable to restart."),
    Case("restart paused", "POST", "/workflow/<P>/restart", 409,
         "Workflow: <wf>.1/<P>.PAUSED is not in terminal state, unable to restart."),
    # WorkflowExecutorOps.java:230-236
    Case("restart non-restartable", "POST", "/workflow/<NR>/restart", 404,
         "Workflow: <wf_nr>.1/<NR>.COMPLETED is non-restartable"),
    # WorkflowExecutorOps.java:203-211 (useLatestDefinitions without a registered definition)
    Case("restart latest unknown", "POST", "/workflow/<G>/restart", 404, "Unable to find latest definition for <G>",
         params={"useLatestDefinitions": "true"}),
    # WorkflowExecutorOps.java:281-285 (NotFoundException for a running workflow; two spaces in the text)
    Case("retry running", "POST", "/workflow/<R>/retry", 404, "Workflow is still running.  status=RUNNING"),
    Case("retry paused", "POST", "/workflow/<P>/retry", 404, "Workflow is still running.  status=PAUSED"),
    # WorkflowExecutorOps.java:496-499
    Case("retry nothing retryable", "POST", "/workflow/<C>/retry", 409,
         "There are no retryable tasks! Use restart if you want to attempt entire workflow execution again."),
    # WorkflowExecutorOps.java:2180-2186
    Case("rerun running", "POST", "/workflow/<R>/rerun", 409,
         "Workflow: <wf>.1/<R>.RUNNING is not in terminal state, unable to rerun.", json={}),
    # WorkflowExecutorOps.java:170-177 (IllegalArgumentException -> 400)
    Case("rerun unknown task", "POST", "/workflow/<C>/rerun", 400, "Task nope not found",
         json={"reRunFromTaskId": "nope"}),
    Case("rerun no body", "POST", "/workflow/<C>/rerun", 500, prefix="Required request body is missing", content=b""),
    # WorkflowExecutorOps.java:1654-1661
    Case("skip completed", "PUT", "/workflow/<C>/skiptask/t1", 500,
         "The workflow <C> is not running so the task referenced by t1 cannot be skipped"),
    Case("skip paused", "PUT", "/workflow/<P>/skiptask/t1", 500,
         "The workflow <P> is not running so the task referenced by t1 cannot be skipped"),
    # WorkflowExecutorOps.java:1663-1672
    Case("skip unknown ref", "PUT", "/workflow/<R>/skiptask/nope", 500,
         "The task referenced by nope does not exist in the WorkflowDefinition <wf>"),
    # WorkflowExecutorOps.java:1674-1685 ("referenced %s", no "by")
    Case("skip processed", "PUT", "/workflow/<R>/skiptask/t1", 500,
         "The task referenced t1 has already been processed, cannot be skipped"),
    # WorkflowExecutorOps.java:141-146
    Case("resetcallbacks completed", "POST", "/workflow/<C>/resetcallbacks", 409,
         "Workflow is in terminal state. Status = COMPLETED"),
    Case("resetcallbacks terminated", "POST", "/workflow/<T>/resetcallbacks", 409,
         "Workflow is in terminal state. Status = TERMINATED"),
    # core/.../core/dal/ExecutionDAOFacade.java:428-441 (IllegalArgumentException -> 400)
    Case("remove running", "DELETE", "/workflow/<R>/remove", 400, "Cannot archive workflow: <R> with status: RUNNING"),
    Case("remove paused", "DELETE", "/workflow/<P>/remove", 400, "Cannot archive workflow: <P> with status: PAUSED"),
    # WorkflowExecutorOps.java:1298-1303 (a terminal workflow: nothing to decide)
    Case("decide completed", "PUT", "/workflow/decide/<C>", 200, reply=""),
)


@WRONG_STATE
def test_verbs_in_the_wrong_state(http: httpx.Client, env: dict[str, str], case: Case) -> None:
    check(http, env, case)


BULK_VERBS = [
    ("PUT", "pause", "pauseWorkflow"),
    ("PUT", "resume", "resumeWorkflow"),
    ("POST", "restart", "restart"),
    ("POST", "retry", "retry"),
    ("POST", "terminate", "terminate"),
    ("DELETE", "remove", "deleteWorkflow"),
    ("DELETE", "terminate-remove", "terminateRemove"),
]
TOO_MANY = [f"id{i}" for i in range(1001)]

BULK = cases(
    # core/.../service/WorkflowBulkService.java:30-89 (@NotEmpty(message = "WorkflowIds list cannot be null."))
    *(
        Case(f"{verb} empty", method, f"/workflow/bulk/{verb}", 400, json=[],
             violation=violation(f"{service}.workflowIds", "WorkflowIds list cannot be null."))
        for method, verb, service in BULK_VERBS
    ),
    # WorkflowBulkService.java:30-89 (@Size(max = 1000): "Cannot process more than {max} workflows. ...")
    *(
        Case(f"{verb} 1001", method, f"/workflow/bulk/{verb}", 400, json=TOO_MANY,
             violation=violation(f"{service}.workflowIds",
                                 "Cannot process more than 1000 workflows. Please use multiple requests."))
        for method, verb, service in BULK_VERBS
    ),
    Case("object body", "PUT", "/workflow/bulk/pause", 500, prefix="JSON parse error: Cannot deserialize value",
         json={"ids": []}),
    Case("no body", "POST", "/workflow/bulk/retry", 500, prefix="Required request body is missing", content=b""),
)


@BULK
def test_bulk_bodies(http: httpx.Client, env: dict[str, str], case: Case) -> None:
    check(http, env, case)


# ------------------------------------------------------------------------------------------------
# Tasks: unknown ids, TaskResult validation, polls, update by reference

STATUS_MISMATCH = (
    "Failed to convert value of type 'java.lang.String' to required type "
    "'com.netflix.conductor.common.metadata.tasks.TaskResult$Status'"
)

TASKS = cases(
    # rest/.../rest/controllers/TaskResource.java:211-217
    Case("get unknown", "GET", "/tasks/<missing>", 404, "Task not found for taskId: <missing>"),
    # WorkflowExecutorOps.java:932-938
    Case("update unknown task", "POST", "/tasks", 404, "No such task found by id: <missing>",
         json={"workflowInstanceId": "<R>", "taskId": "<missing>", "status": "COMPLETED"}),
    Case("update-v2 unknown task", "POST", "/tasks/update-v2", 404, "No such task found by id: <missing>",
         json={"workflowInstanceId": "<R>", "taskId": "<missing>", "status": "COMPLETED"}),
    # WorkflowExecutorOps.java:924-926 -> 1139-1146 (extendLease reads only the task)
    Case("extend lease unknown", "POST", "/tasks", 404, "No such task found by id: <missing>",
         json={"workflowInstanceId": "<missing>", "taskId": "<missing>", "extendLease": True}),
    # TaskResource.java:202-209 (no logs: 204, no error)
    Case("logs of unknown", "GET", "/tasks/<missing>/log", 204),
    # common/.../common/metadata/tasks/TaskResult.java:45, 49 (@NotEmpty; TaskService.java:97-98 @Valid)
    Case("no workflow id", "POST", "/tasks", 400, json={"taskId": "<task_R>", "status": "COMPLETED"},
         violation=violation("updateTask.taskResult.workflowInstanceId", "Workflow Id cannot be null or empty")),
    Case("no task id", "POST", "/tasks", 400, json={"workflowInstanceId": "<R>", "status": "COMPLETED"},
         violation=violation("updateTask.taskResult.taskId", "Task ID cannot be null or empty")),
    Case("empty task id", "POST", "/tasks", 400, json={"workflowInstanceId": "<R>", "taskId": "", "status": "COMPLETED"},
         violation=violation("updateTask.taskResult.taskId", "Task ID cannot be null or empty", "")),
    # TaskResource.java:100 (@Valid at the controller: MethodArgumentNotValidException -> 500)
    Case("update-v2 no task id", "POST", "/tasks/update-v2", 500, prefix="Validation failed for argument [0]",
         json={"workflowInstanceId": "<R>", "status": "COMPLETED"}),
    # WorkflowExecutorOps.java:944-956: a finished task is ignored (200), whatever the status says
    Case("update finished task", "POST", "/tasks", 200, json={"workflowInstanceId": "<C>", "taskId": "<task_C>"},
         reply="<task_C>"),
    # DELIBERATE text: WorkflowExecutorOps.java:981 (status null: NullPointerException -> 500)
    Case("status missing", "POST", "/tasks", 500, "Task status cannot be null for task <task_R>",
         json={"workflowInstanceId": "<R>", "taskId": "<task_R>"}),
    # Jackson InvalidFormatException (TaskResult.Status) -> 500; DELIBERATE wording as "taskdef bad enum"
    Case("status unknown", "POST", "/tasks", 500, json={"workflowInstanceId": "<R>", "taskId": "<task_R>", "status": "DONE"},
         prefix="Cannot deserialize value of type `com.netflix.conductor.common.metadata.tasks.TaskResult$Status` "
         'from String "DONE"'),
    Case("no body", "POST", "/tasks", 500, prefix="Required request body is missing", content=b""),
    Case("array body", "POST", "/tasks", 500, prefix="JSON parse error: Cannot deserialize value", json=[]),
)


@TASKS
def test_task_errors(http: httpx.Client, env: dict[str, str], case: Case) -> None:
    check(http, env, case)


POLL_AND_SEARCH = cases(
    # core/.../service/ExecutionService.java:113-116 (IllegalArgumentException -> 400)
    Case("poll timeout", "GET", "/tasks/poll/batch/<td>", 400, "Long Poll Timeout value cannot be more than 5 seconds",
         params={"timeout": 5001}),
    Case("poll empty queue", "GET", "/tasks/poll/batch/<missing>", 200, params={"timeout": 0}, reply=[]),
    # ExecutionService.java:122 -> sqlite-persistence/.../sqlite/dao/SqliteQueueDAO.java:157-177: count 0 pops
    # nothing and returns at once (messages.size() >= count); <td> has tasks queued (R's, P's)
    Case("poll count 0", "GET", "/tasks/poll/batch/<td>", 200, params={"count": 0, "timeout": 5000}, reply=[]),
    # DELIBERATE: SQLite's "LIMIT -1" pops every queued message (postgres errors and answers []); [] here
    Case("poll count negative", "GET", "/tasks/poll/batch/<td>", 200, params={"count": -1, "timeout": 100}, reply=[]),
    # Spring MethodArgumentTypeMismatchException -> 500
    Case("poll timeout not int", "GET", "/tasks/poll/batch/<td>", 500,
         prefix="Failed to convert value of type 'java.lang.String' to required type 'int'", params={"timeout": "x"}),
    # core/.../service/WorkflowService.java:279-310 (@Max(5_000) size)
    Case("search size", "GET", "/workflow/search", 400, params={"size": 5001},
         violation=violation("searchWorkflows.size", "Cannot return more than 5000 workflows. Please use pagination.",
                             "5001")),
    Case("search-v2 size", "GET", "/workflow/search-v2", 400, params={"size": 5001},
         violation=violation("searchWorkflowsV2.size", "Cannot return more than 5000 workflows. Please use pagination.",
                             "5001")),
    # WorkflowService.java:367-368 and TaskService.java:227-241: no bound on these
    Case("search-by-tasks size", "GET", "/workflow/search-by-tasks", 200,
         params={"size": 5001, "query": "workflowType = '<missing>'"}, reply={"totalHits": 0, "results": []}),
    Case("task search size", "GET", "/tasks/search", 200,
         params={"size": 5001, "query": "taskType = '<missing>'"}, reply={"totalHits": 0, "results": []}),
)


@POLL_AND_SEARCH
def test_poll_and_search_bounds(http: httpx.Client, env: dict[str, str], case: Case) -> None:
    check(http, env, case)


UPDATE_BY_REF = cases(
    # TaskResource.java:115-125 (@PathVariable TaskResult.Status: MethodArgumentTypeMismatchException -> 500)
    Case("unknown status", "POST", "/tasks/<R>/t1/DONE", 500, prefix=STATUS_MISMATCH, json={}),
    Case("status case", "POST", "/tasks/<R>/t1/completed", 500, prefix=STATUS_MISMATCH, json={}),
    Case("not a result status", "POST", "/tasks/<R>/t1/SCHEDULED", 500, prefix=STATUS_MISMATCH, json={}),
    # the path variable is converted before the body is read
    Case("unknown status bad body", "POST", "/tasks/<R>/t1/DONE", 500, prefix=STATUS_MISMATCH, json=[1]),
    Case("sync unknown status", "POST", "/tasks/<R>/t1/DONE/sync", 500, prefix=STATUS_MISMATCH, json={}),
    Case("signal unknown status", "POST", "/tasks/<R>/DONE/signal", 500, prefix=STATUS_MISMATCH, json={}),
    Case("signal sync unknown status", "POST", "/tasks/<R>/DONE/signal/sync", 500, prefix=STATUS_MISMATCH, json={}),
    # TaskServiceImpl.java:156-159 (no pending task with that reference: null, an empty 200)
    Case("nothing pending", "POST", "/tasks/<C>/t1/COMPLETED", 200, json={}, reply=""),
    Case("unknown ref", "POST", "/tasks/<R>/nope/COMPLETED", 200, json={}, reply=""),
    # TaskResource.java:138-143
    Case("sync nothing pending", "POST", "/tasks/<C>/t1/COMPLETED/sync", 404,
         "Found no running task t1 of workflow <C> to update", json={}),
    # TaskResource.java:181-185
    Case("signal sync nothing waiting", "POST", "/tasks/<R>/COMPLETED/signal/sync", 404,
         "Found no blocked task in workflow <R> to signal", json={}),
    Case("bad body", "POST", "/tasks/<R>/nope/COMPLETED", 500, prefix="JSON parse error: Cannot deserialize value",
         json=[1]),
)


@UPDATE_BY_REF
def test_update_by_reference(http: httpx.Client, env: dict[str, str], case: Case) -> None:
    check(http, env, case)


def test_the_fixture_workflows_were_left_as_they_were(http: httpx.Client, env: dict[str, str]) -> None:
    """The rows above are refusals or no-ops: nothing changed the workflows they ran against."""
    expected = {"R": "RUNNING", "P": "PAUSED", "C": "COMPLETED", "T": "TERMINATED", "NR": "COMPLETED"}
    assert {k: get_workflow(http, env[k])["status"] for k in expected} == expected
    assert [t["status"] for t in get_workflow(http, env["R"])["tasks"]] == ["SCHEDULED"]
    assert [t["status"] for t in get_workflow(http, env["P"])["tasks"]] == ["SCHEDULED"]
