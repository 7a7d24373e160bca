"""The notebook scenario, run on an embedded and on a remote Lab: register, workers from cells,
runs and their tables, every control verb, why(), child(), loops, and history/analysis in SQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from matplotlib.colors import to_rgba

import conductor_lab as cl
from conductor_lab.lab import DEFAULT_TASK_DEF, Lab
from conductor_lab.run import ACTIONS, Run, Timeline, allowed_actions
from conductor_lab.widgets.palette import status_color
from tests.conftest import wait_until
from tests.lab.conftest import POLL_MS, unique, waiting_workflow

# ------------------------------------------------------------------------------------------------
# authoring


def test_register_reports_defaults_diffs_and_versions(lab: Lab, tmp_path: Path) -> None:
    name, fetch = unique("etl"), unique("fetch")
    wf = {
        "name": name,
        "tasks": [
            {"name": fetch, "taskReferenceName": "fetch", "type": "SIMPLE", "inputParameters": {"day": "x"}},
            {"name": "gate", "taskReferenceName": "gate", "type": "WAIT"},
        ],
    }
    reg = lab.register(workflow=wf)
    assert [(w.name, w.version, w.action) for w in reg.workflows] == [(name, 1, "registered")]
    assert reg.defaulted == [fetch]
    stored_def = lab.client.get_task_def(fetch)
    assert {k: stored_def[k] for k in DEFAULT_TASK_DEF} == DEFAULT_TASK_DEF
    assert reg.changes.empty

    # the same again: nothing changed, and the task definition is not defaulted twice
    again = lab.register(wf)
    assert again.workflows[0].action == "unchanged" and again.defaulted == []

    # a changed definition at the same version: its differences from the stored one
    changed = json.loads(json.dumps(wf))
    changed["description"] = "daily"
    changed["tasks"][0]["inputParameters"]["day"] = "${workflow.input.day}"
    changed["tasks"].insert(1, {"name": "noop", "taskReferenceName": "mark", "type": "NOOP"})
    reg = lab.register(workflow=changed)
    assert reg.workflows[0].action == "replaced"
    diff = reg.diff(name)
    assert list(diff.columns) == ["path", "stored", "new"]
    rows = {r.path: (r.stored, r.new) for r in diff.itertuples()}
    assert rows["description"] == (None, "daily")
    assert rows["tasks[fetch].inputParameters.day"] == ("x", "${workflow.input.day}")
    assert rows["tasks (order)"] == (["fetch", "gate"], ["fetch", "mark", "gate"])
    assert rows["tasks[mark]"][0] is None and rows["tasks[mark]"][1]["type"] == "NOOP"
    assert len(rows) == 4  # the inserted task does not shift the others
    assert list(reg.changes.columns) == ["workflow", "version", "path", "stored", "new"]
    html = reg._repr_html_()
    assert "tasks[fetch].inputParameters.day" in html and "replaced" in html

    # new_version: stored as max + 1, compared with the latest stored version
    reg = lab.register(workflow=wf, new_version=True)
    assert (reg.workflows[0].version, reg.workflows[0].action) == (2, "new version (after 1)")
    assert ("description", "daily", None) in reg.workflows[0].changes
    assert [v["version"] for v in lab.workflow_defs().query("name == @name").to_dict("records")] == [1, 2]

    # overwrite=False on a stored name + version: a sentence, not a 409 traceback
    with pytest.raises(cl.LabError, match=f"workflow {name} version 1 is already stored"):
        lab.register(workflow=wf, overwrite=False)

    # a JSON file holding a list: a task definition and a workflow using it
    other = unique("wf")
    path = tmp_path / "defs.json"
    path.write_text(
        json.dumps(
            [
                {"name": fetch + "_t", "retryCount": 2, "timeoutSeconds": 60, "responseTimeoutSeconds": 30},
                {
                    "name": other,
                    "tasks": [{"name": fetch + "_t", "taskReferenceName": "a", "type": "SIMPLE"}],
                },
            ]
        )
    )
    reg = lab.register(str(path))
    assert reg.taskdefs == [fetch + "_t"] and reg.defaulted == [] and reg.workflows[0].name == other
    assert lab.taskdefs().set_index("name").loc[fetch + "_t", "retryCount"] == 2


def test_register_builder_workflow(lab: Lab) -> None:
    name, a = unique("built"), unique("a")
    built = cl.workflow(name, cl.simple(a) >> cl.noop("done"))
    reg = lab.register(built)
    assert reg.workflows[0].name == name and reg.defaulted == [a]
    assert [t["taskReferenceName"] for t in lab.client.get_workflow_def(name)["tasks"]] == [a, "done"]


def test_validation_errors_are_readable(lab: Lab) -> None:
    bad = {
        "name": unique("bad"),
        "tasks": [
            {"name": "s", "taskReferenceName": "s", "type": "SWITCH"},
            {
                "name": "y",
                "taskReferenceName": "y",
                "type": "NOOP",
                "inputParameters": {"a": "${nope.output}"},
            },
        ],
    }
    with pytest.raises(cl.LabValidationError) as info:
        lab.register(workflow=bad)
    lines = str(info.value).splitlines()
    assert lines[0] == f"workflow {bad['name']!r} refused by the server:"
    assert any(
        line.strip().endswith(
            "evaluatorType field is required for taskType: SWITCH taskName: s (taskReferenceName: s)"
        )
        for line in lines[1:]
    )
    assert any("taskReferenceName: nope for given task: y" in line for line in lines[1:])
    assert all(": " in line for line in lines[1:])  # one "path: message" per line
    assert len(info.value.errors) == len(lines) - 1
    assert lab.client.workflow_versions(bad["name"]) == []  # nothing stored
    with pytest.raises(cl.LabError, match="not a workflow or task definition"):
        lab.register({"description": "neither"})


# ------------------------------------------------------------------------------------------------
# workers from cells, runs and their tables


def test_cell_worker_completes_a_workflow(lab: Lab) -> None:
    name, task_type = unique("cell"), unique("double")
    lab.register(
        workflow={
            "name": name,
            "tasks": [
                {
                    "name": task_type,
                    "taskReferenceName": "double",
                    "type": "SIMPLE",
                    "inputParameters": {"n": "${workflow.input.n}"},
                }
            ],
            "outputParameters": {"result": "${double.output.result}"},
        }
    )

    @lab.worker(task_type, poll_timeout_ms=POLL_MS)
    def double(n: int) -> dict[str, Any]:
        print(f"doubling {n}")
        return {"result": 2 * n}

    assert isinstance(double, cl.CellWorker) and double.__name__ == "double"
    assert double(4) == {"result": 8}  # calling the handle calls the function
    run = lab.start(name, {"n": 21}).wait(10)
    assert run.status == "COMPLETED" and run.output == {"result": 42}
    assert run.task("double").logs == ["doubling 21"]
    wait_until(lambda: double.stats["completed"] == 1, what="stats counted the task")
    assert double in lab.workers and "completed=1" in repr(double)
    bundle = double._repr_mimebundle_()
    assert bundle["text/plain"] == repr(double) and task_type in bundle["text/html"]

    # running the cell again replaces the worker: the old one is stopped first
    @lab.worker(task_type, poll_timeout_ms=POLL_MS)
    def double(n: int) -> dict[str, Any]:  # noqa: F811 - the notebook's re-run cell
        return {"result": 3 * n}

    previous = [w for w in lab.workers if w.task_type == task_type]
    assert len(previous) == 1 and previous[0] is double
    run = lab.start(name, {"n": 2}).wait(10)
    assert run.output == {"result": 6}
    assert double.stop() and not double.running
    assert double.start().running


def test_start_wait_tasks_timeline(lab: Lab) -> None:
    name, task_type = unique("tl"), unique("work")
    lab.register(
        workflow={
            "name": name,
            "tasks": [
                {
                    "name": task_type,
                    "taskReferenceName": "work",
                    "type": "SIMPLE",
                    "inputParameters": {"rows": "${workflow.input.rows}", "cfg": {"mode": "fast"}},
                },
                {"name": "approve", "taskReferenceName": "approve", "type": "WAIT"},
            ],
        }
    )

    @lab.worker(task_type, poll_timeout_ms=POLL_MS)
    def work(rows: int, cfg: dict[str, str]) -> dict[str, Any]:
        return {"count": rows, "mode": cfg["mode"]}

    run = lab.start(name, {"rows": 3}, correlation_id="c-1")
    wait_until(lambda: run.refresh().open_tasks() == ["approve"], what="the worker did its task")
    with pytest.raises(TimeoutError, match=r"is still RUNNING after 0.3s; open tasks: approve"):
        run.wait(0.3)

    timeline = run.timeline()
    assert isinstance(timeline, Timeline)
    assert list(timeline.columns) == [
        "ref", "attempt", "status", "queued_at", "started_at", "ended_at", "wait_s", "run_s",
    ]  # fmt: skip
    assert timeline["ref"].tolist() == ["work", "approve"]
    assert pd.isna(timeline.loc[1, "ended_at"])  # still running: an open-ended bar
    ax = timeline.plot()
    assert len(ax.patches) == 4  # queue wait + run for each attempt
    assert ax.patches[3].get_hatch() == "//"  # the open-ended run bar of the WAIT
    light, solid = status_color("COMPLETED", "fill"), status_color("COMPLETED", "stroke")
    assert ax.patches[0].get_facecolor() == to_rgba(light)  # the queue wait of `work`
    assert ax.patches[1].get_facecolor() == to_rgba(solid)  # its run
    assert [t.get_text() for t in ax.get_yticklabels()] == ["work", "approve"]

    run.task("approve").complete({"ok": True})
    run.wait(10)
    assert run.status == "COMPLETED"
    tasks = run.tasks()
    assert tasks["ref"].tolist() == ["work", "approve"]
    assert tasks["status"].tolist() == ["COMPLETED", "COMPLETED"]
    assert tasks["type"].tolist() == ["SIMPLE", "WAIT"]
    assert tasks["attempt"].tolist() == [1, 1]
    assert tasks.loc[0, "input.rows"] == 3 and tasks.loc[0, "input.cfg.mode"] == "fast"
    assert tasks.loc[0, "output.count"] == 3 and tasks.loc[1, "output.ok"] is True
    assert tasks.loc[0, "worker"] and isinstance(tasks.loc[0, "scheduled"], pd.Timestamp)
    assert tasks.loc[0, "scheduled"] <= tasks.loc[0, "started"] <= tasks.loc[0, "ended"]
    assert tasks.loc[0, "wait_s"] >= 0 and tasks.loc[0, "run_s"] >= 0
    assert str(tasks["scheduled"].dtype).startswith("datetime64") and tasks["scheduled"].dt.tz is not None
    done = run.timeline()
    assert done["ended_at"].notna().all()
    ax = done.plot()
    assert len(ax.patches) == 4 and not any(p.get_hatch() for p in ax.patches)

    assert run.json["workflowId"] == run.id and json.loads(run.to_json())["correlationId"] == "c-1"
    code = run.as_code()
    assert code.startswith("run = lab.start(\n") and "{'rows': 3}" in code and "correlation_id='c-1'" in code
    scope: dict[str, Any] = {"lab": lab}
    exec(code, scope)
    again: Run = scope["run"]
    assert again.id != run.id and again.input == {"rows": 3} and again.correlation_id == "c-1"
    again.terminate("done with it")
    assert repr(run) == f"Run({name!r}, {run.id!r}, status=COMPLETED)"
    assert lab.run(run.id) == run


def test_execute_waits_on_the_server(lab: Lab) -> None:
    quick, blocked = unique("quick"), unique("blocked")
    lab.register(
        workflow={
            "name": quick,
            "tasks": [
                {
                    "name": "js",
                    "taskReferenceName": "js",
                    "type": "INLINE",
                    "inputParameters": {"evaluatorType": "javascript", "expression": "1 + 2"},
                }
            ],
            "outputParameters": {"v": "${js.output.result}"},
        }
    )
    lab.register(workflow=waiting_workflow(blocked, "gate"))
    assert lab.execute(quick).json["status"] == "COMPLETED"
    assert lab.execute(quick).output == {"v": 3}
    run = lab.execute(blocked, {"a": 1}, wait_for_seconds=2)
    assert run.json["status"] == "RUNNING" and run.open_tasks() == ["gate"]
    run.terminate()


def test_iterations_of_a_loop(lab: Lab) -> None:
    name = unique("loop")
    lab.register(
        workflow={
            "name": name,
            "tasks": [
                {
                    "name": "loop",
                    "taskReferenceName": "loop",
                    "type": "DO_WHILE",
                    "loopCondition": "$.loop['iteration'] < 3",
                    "inputParameters": {"loop": "${loop.output}"},
                    "loopOver": [
                        {
                            "name": "sq",
                            "taskReferenceName": "sq",
                            "type": "INLINE",
                            "inputParameters": {
                                "evaluatorType": "javascript",
                                "expression": "$.i * $.i",
                                "i": "${loop.output.iteration}",
                            },
                        }
                    ],
                }
            ],
        }
    )
    run = lab.start(name).wait(10)
    assert run.status == "COMPLETED"
    it = run.iterations("loop")
    assert it["iteration"].tolist() == [1, 2, 3]
    assert it["ref"].tolist() == ["sq"] * 3 and (it["status"] == "COMPLETED").all()
    assert it["output.result"].tolist() == [1, 4, 9]
    assert run.task("sq").output == {"result": 9}  # the latest iteration
    with pytest.raises(cl.LabError, match="not a DO_WHILE"):
        run.iterations("sq")


# ------------------------------------------------------------------------------------------------
# control verbs


def _run_in(lab: Lab, name: str, status: str) -> Run:
    """A run of ``name`` (two WAIT tasks: gate, later) brought to ``status`` through the verbs."""
    run = lab.start(name)
    if status == "PAUSED":
        run.pause()
    elif status == "COMPLETED":
        run.task("gate").complete()
        wait_until(lambda: run.refresh().open_tasks() == ["later"])
        run.task("later").complete()
    elif status == "FAILED":
        run.task("gate").fail("gate broke")
    elif status == "TERMINATED":
        run.terminate("stop")
    if status in ("COMPLETED", "FAILED", "TERMINATED"):
        run.wait(5)
    assert run.status == status
    return run


#: what the server also accepts beyond allowed_actions: no-ops and a relabel (see run.ACTIONS)
_ALSO_ACCEPTED = {("PAUSED", "pause"), ("TERMINATED", "terminate"), ("FAILED", "terminate")}


@pytest.mark.parametrize("status", ["RUNNING", "PAUSED", "COMPLETED", "FAILED", "TERMINATED"])
def test_allowed_actions_match_the_server(lab: Lab, status: str) -> None:
    name = unique("verbs")
    lab.register(workflow=waiting_workflow(name, "gate", "later"))
    allowed = _run_in(lab, name, status).allowed_actions()
    assert allowed == [v for v in ACTIONS[status] if v in allowed]
    verbs = {
        "pause": lambda r: r.pause(),
        "resume": lambda r: r.resume(),
        "terminate": lambda r: r.terminate("verb test"),
        "retry": lambda r: r.retry(),
        "restart": lambda r: r.restart(),
        "rerun": lambda r: r.rerun(),
        "skip": lambda r: r.skip("later"),
    }
    run = _run_in(lab, name, status)
    for verb, call in verbs.items():
        try:
            call(run)
            accepted = True
        except cl.LabError as e:
            accepted = False
            assert f"{verb} {run.id}: " in str(e)
            assert run.status == status  # a refused verb changes nothing: the run serves the next one
        if accepted:
            run = _run_in(lab, name, status)
        expected = verb in allowed or (status, verb) in _ALSO_ACCEPTED
        assert accepted == expected, f"{verb} in {status}: server {'accepted' if accepted else 'refused'}"


def test_allowed_actions_refines_retry_and_restart() -> None:
    done = {"status": "COMPLETED", "tasks": [{"referenceTaskName": "a", "status": "COMPLETED", "seq": 1}]}
    assert allowed_actions(done) == ["restart", "rerun"]
    assert allowed_actions({**done, "workflowDefinition": {"restartable": False}}) == ["rerun"]
    retried_ok = {
        "status": "FAILED",
        "tasks": [
            {"referenceTaskName": "a", "status": "FAILED", "retried": True, "seq": 1},
            {"referenceTaskName": "a", "status": "COMPLETED", "seq": 2},
        ],
    }
    assert allowed_actions(retried_ok) == ["restart", "rerun"]  # no retriable last attempt
    assert allowed_actions({"status": "TIMED_OUT", "tasks": retried_ok["tasks"]})[0] == "retry"
    assert allowed_actions({"status": "TERMINATED", "tasks": []}) == ["restart", "rerun"]


def test_verbs_move_a_run_through_its_states(lab: Lab) -> None:
    name, task_type = unique("life"), unique("step")
    lab.register(
        workflow={
            "name": name,
            "tasks": [
                {"name": "gate", "taskReferenceName": "gate", "type": "WAIT"},
                {
                    "name": task_type,
                    "taskReferenceName": "step",
                    "type": "SIMPLE",
                    "inputParameters": {"x": "${workflow.input.x}"},
                },
                {"name": "after", "taskReferenceName": "after", "type": "WAIT"},
            ],
        }
    )
    seen: list[Any] = []

    @lab.worker(task_type, poll_timeout_ms=POLL_MS)
    def step(x: Any) -> dict[str, Any]:
        seen.append(x)
        return {"x": x}

    run = lab.start(name, {"x": 1})
    assert run.pause().json["status"] == "PAUSED" and run.allowed_actions() == ["resume", "terminate"]
    assert run.resume().json["status"] == "RUNNING"
    run.skip("after")  # not reached yet: jumped over when the flow gets there
    run.task("gate").complete({"by": "test"})
    assert run.wait(10).status == "COMPLETED"
    assert run.tasks().set_index("ref")["status"].to_dict() == {
        "gate": "COMPLETED", "step": "COMPLETED", "after": "SKIPPED",
    }  # fmt: skip

    run.rerun(from_task="step", task_input={"x": 5})
    assert run.wait(10).task("step").input == {"x": 5} and seen[-1] == 5
    run.rerun(input={"x": 7})  # from the start, new input: back at the gate
    assert run.json["status"] == "RUNNING" and run.input == {"x": 7}
    wait_until(lambda: run.refresh().open_tasks() == ["gate"])

    run.terminate("enough")
    assert run.status == "TERMINATED" and run.reason == "enough"
    assert "retry" in run.allowed_actions()
    run.retry()
    assert run.json["status"] == "RUNNING"
    assert run.tasks()["attempt"].tolist() == [1, 2]  # the cancelled gate got a new attempt
    attempts = run.task("gate").attempts
    assert attempts["status"].tolist() == ["CANCELED", "IN_PROGRESS"] and attempts["retried"].tolist() == [
        True,
        False,
    ]

    run.task("gate").fail("said no")
    assert run.wait(10).status == "FAILED" and "said no" in (run.reason or "")
    run.restart()
    assert run.json["status"] == "RUNNING" and run.tasks()["ref"].tolist() == ["gate"]
    with pytest.raises(cl.LabError, match=f"resume {run.id}: .*not PAUSED"):
        run.resume()
    run.task("gate").complete()
    with pytest.raises(cl.LabError, match="gate.* is COMPLETED; it cannot be updated"):
        run.task("gate").complete()
    wait_until(lambda: run.refresh().open_tasks() == ["after"], what="step ran again")
    run.terminate()


# ------------------------------------------------------------------------------------------------
# why(), child()


def test_why_names_the_failed_branch_of_a_fork(lab: Lab) -> None:
    name, task_type = unique("forky"), unique("load")
    lab.register(
        workflow={
            "name": name,
            "tasks": [
                {
                    "name": "fork",
                    "taskReferenceName": "fork",
                    "type": "FORK_JOIN",
                    "forkTasks": [
                        [{"name": "hold", "taskReferenceName": "hold", "type": "WAIT"}],
                        [{"name": task_type, "taskReferenceName": "load", "type": "SIMPLE"}],
                    ],
                },
                {"name": "join", "taskReferenceName": "join", "type": "JOIN", "joinOn": ["hold", "load"]},
                {"name": "after", "taskReferenceName": "after", "type": "NOOP"},
            ],
        }
    )

    @lab.worker(task_type, poll_timeout_ms=POLL_MS)
    def load() -> None:
        raise ValueError("bad row 42")

    run = lab.start(name).wait(10)
    assert run.status == "FAILED"
    why = run.why()
    assert why and why.failed and why.root is why
    assert (why.ref, why.type, why.task_status, why.attempt) == ("load", "SIMPLE", "FAILED", 1)
    assert why.task_reason == "bad row 42" and why.worker
    assert "hold" in why.canceled and why.child is None
    text = repr(why)
    assert text.splitlines()[1].startswith("root: task load (SIMPLE, attempt 1, worker ")
    assert "bad row 42" in text and "canceled: " in text
    md = why._repr_markdown_()
    assert "`load`" in md and "bad row 42" in md and "`hold`" in md

    waiting = unique("waiting")
    lab.register(workflow=waiting_workflow(waiting, "w"))
    ok = lab.start(waiting)  # a run that has not failed
    assert not ok.why() and repr(ok.why()) == f"nothing failed: {waiting} {ok.id} is RUNNING"
    ok.terminate()


def test_why_and_child_follow_a_sub_workflow(lab: Lab) -> None:
    child_name, parent_name = unique("child"), unique("parent")
    lab.register(workflow=waiting_workflow(child_name, "c_wait"))
    lab.register(
        workflow={
            "name": parent_name,
            "tasks": [
                {
                    "name": "sub",
                    "taskReferenceName": "sub",
                    "type": "SUB_WORKFLOW",
                    "subWorkflowParam": {"name": child_name, "version": 1},
                },
                {"name": "then", "taskReferenceName": "then", "type": "NOOP"},
            ],
        }
    )
    parent = lab.start(parent_name)
    child = wait_until(lambda: _child_or_none(parent), what="the sub-workflow started")
    assert child.name == child_name and child.parent_id == parent.id
    child.task("c_wait").fail("child broke")
    assert parent.wait(10).status == "FAILED"
    why = parent.why()
    assert (why.ref, why.type) == ("sub", "SUB_WORKFLOW")
    assert why.child is not None and why.child.workflow_id == child.id
    assert why.root.ref == "c_wait" and why.root.task_reason == "child broke"
    text = repr(why)
    assert "in sub-workflow sub:" in text and "child broke" in text
    assert parent.child("sub") == child
    with pytest.raises(cl.LabError, match="no task 'nope'"):
        parent.child("nope")


def _child_or_none(run: Run) -> Run | None:
    try:
        return run.refresh().child("sub")
    except cl.LabError:
        return None


# ------------------------------------------------------------------------------------------------
# history and analysis (SQL)


def test_history_runs_bulk_and_analysis(lab: Lab, capsys: pytest.CaptureFixture[str]) -> None:
    name, task_type = unique("hist"), unique("crunch")
    lab.register(
        workflow={
            "name": name,
            "tasks": [
                {
                    "name": task_type,
                    "taskReferenceName": "crunch",
                    "type": "SIMPLE",
                    "inputParameters": {"n": "${workflow.input.n}"},
                },
                {"name": "noop", "taskReferenceName": "tail", "type": "NOOP"},
            ],
        }
    )

    @lab.worker(task_type, poll_timeout_ms=POLL_MS)
    def crunch(n: int) -> dict[str, Any]:
        if n % 2:
            raise RuntimeError(f"odd input {n} at row {n * 100}")
        return {"half": n // 2}

    runs = [lab.start(name, {"n": n}) for n in range(4)]
    for r in runs:
        r.wait(10)
    capsys.readouterr()

    hist = lab.history(name=name, since="1h")
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("-- SELECT ") and f"name = '{name}'" in printed and "\n" not in printed
    assert hist.attrs["sql"] == printed[3:]
    assert list(hist.columns) == [
        "workflowId", "workflowType", "version", "status", "startTime", "endTime", "duration_s",
        "correlationId", "reason",
    ]  # fmt: skip
    assert hist["workflowId"].tolist() == [r.id for r in reversed(runs)]  # newest first
    assert sorted(hist["status"]) == ["COMPLETED", "COMPLETED", "FAILED", "FAILED"]
    assert lab.sql(hist.attrs["sql"])["workflowId"].tolist() == hist["workflowId"].tolist()
    assert len(lab.history(name=name, status=["failed"], verbose=False)) == 2
    assert lab.history(name=name, since="1w", text="nothing like this", verbose=False).empty
    assert len(lab.history(name=name, text='"n":3', verbose=False)) == 1
    assert lab.history(name=name, text='"n"_3', verbose=False).empty  # _ and % are matched literally
    assert lab.history(name=name, text='"n"%3', verbose=False).empty
    half_hour_ago = datetime.now() - timedelta(minutes=30)  # naive: local time
    assert len(lab.history(name=name, since=half_hour_ago, verbose=False)) == 4
    assert len(lab.history(name=name, since=timedelta(minutes=30), verbose=False)) == 4
    assert lab.history(name=name, since=datetime.now(UTC) + timedelta(minutes=1), verbose=False).empty
    with pytest.raises(cl.LabError, match="since="):
        lab.history(since="yesterday")

    failed = lab.runs(name=name, status="FAILED")
    assert len(failed) == 2 and {r.id for r in failed} == {runs[1].id, runs[3].id}
    assert isinstance(failed[0], Run) and failed.last(1).ids == [runs[3].id]
    crunch.stop()
    result = failed.retry()
    assert list(result.columns) == ["workflowId", "ok", "error"] and result["ok"].all()
    assert {r.status for r in failed} == {"RUNNING"}
    queues = lab.queues().set_index("task_type")
    assert queues.loc[task_type, "pending"] == 2
    assert queues.loc[task_type, "last_worker"] and pd.notna(queues.loc[task_type, "last_poll_at"])
    assert failed.pause()["ok"].all() and {r.status for r in failed} == {"PAUSED"}
    assert failed.resume()["ok"].all()
    again = failed.terminate("bulk stop")
    assert again["ok"].all() and {r.status for r in failed} == {"TERMINATED"}
    mixed = lab.runs(name=name).resume()  # nothing is paused: per-run errors, not an exception
    assert len(mixed) == 4 and not mixed["ok"].any() and mixed["error"].notna().all()

    diff = lab.diff(runs[0], runs[2].id)
    assert set(diff["section"]) <= {"input", "task output", "duration"}
    rows = {(r.section, r.key): (r.a, r.b) for r in diff.itertuples()}
    assert rows[("input", "n")] == (0, 2)
    assert rows[("task output", "crunch.half")] == (0, 1)
    assert ("task status", "crunch") not in rows  # equal rows are hidden
    diff = lab.diff(runs[0], runs[1])  # runs[1]: failed, retried, terminated while queued
    rows = {(r.section, r.key): (r.a, r.b) for r in diff.itertuples()}
    assert rows[("task status", "crunch")] == ("COMPLETED", "CANCELED")
    assert rows[("task status", "tail")] == ("COMPLETED", None)

    durations = lab.durations(name)
    assert durations["ref"].tolist() == ["crunch", "tail"]
    assert list(durations.columns) == ["ref", "runs", "p50_s", "p95_s", "max_s", "failures"]
    assert durations.set_index("ref").loc["crunch", "runs"] == 4
    assert durations.set_index("ref").loc["crunch", "failures"] == 2
    assert (durations["p50_s"] <= durations["max_s"]).all()

    failures = lab.failures(since="1h", name=name)
    assert failures["reason"].tolist() == ["odd input N at row N"]
    assert (
        failures.loc[0, "tasks"] == 2 and failures.loc[0, "runs"] == 2 and failures.loc[0, "refs"] == "crunch"
    )

    counts = lab.sql(
        "SELECT status, count(*) AS n FROM workflows WHERE name = ? GROUP BY 1 ORDER BY 1", [name]
    )
    assert dict(zip(counts["status"], counts["n"], strict=True)) == {"COMPLETED": 2, "TERMINATED": 2}
    with pytest.raises(cl.LabError, match="SQL refused"):
        lab.sql("DELETE FROM cl_tasks")
    assert lab.sql("SELECT * FROM range(5)", max_rows=3).attrs["truncated"] is True


def test_definitions_as_frames(lab: Lab) -> None:
    name = unique("defs")
    lab.register(workflow=waiting_workflow(name, "w", description="for the frame"))
    defs = lab.workflow_defs()
    row = defs[defs["name"] == name].iloc[0]
    assert (row["version"], row["tasks"], row["description"]) == (1, 1, "for the frame")
    assert isinstance(row["createTime"], pd.Timestamp)
    tds = lab.taskdefs()
    assert {"name", "retryCount", "timeoutSeconds", "responseTimeoutSeconds"} <= set(tds.columns)


def test_domains_route_tasks_to_a_domain_worker(lab: Lab) -> None:
    name, task_type = unique("dom"), unique("routed")
    lab.register(
        workflow={"name": name, "tasks": [{"name": task_type, "taskReferenceName": "r", "type": "SIMPLE"}]}
    )

    @lab.worker(task_type, domain="blue", poll_timeout_ms=POLL_MS)
    def routed() -> dict[str, str]:
        return {"by": "blue"}

    run = lab.start(name, task_to_domain={task_type: "blue"}, priority=5).wait(10)
    assert run.status == "COMPLETED" and run.task("r").output == {"by": "blue"}
    assert "task_to_domain={" in run.as_code() and "priority=5" in run.as_code()
    queues = lab.queues()
    blue = queues[(queues["task_type"] == task_type) & (queues["domain"] == "blue")]
    assert len(blue) == 1 and blue.iloc[0]["pending"] == 0 and blue.iloc[0]["last_worker"]
