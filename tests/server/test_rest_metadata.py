"""REST contract: /api/metadata (task and workflow definitions), against a real server."""

from __future__ import annotations

import httpx

from tests.server.util import assert_empty_200, assert_error, simple_task, uid, workflow_def


def names(http: httpx.Client) -> list[str]:
    r = http.get("/metadata/workflow/names")
    assert r.status_code == 200
    return r.json()


def task_def_names(http: httpx.Client) -> list[str]:
    return [d["name"] for d in http.get("/metadata/taskdefs").json()]


def test_task_def_create_get_list_update_delete(http: httpx.Client) -> None:
    name = uid("td")
    r = http.post("/metadata/taskdefs", json=[{"name": name, "retryCount": 1, "timeoutSeconds": 60,
                                               "responseTimeoutSeconds": 30}])  # fmt: skip
    assert_empty_200(r)
    got = http.get(f"/metadata/taskdefs/{name}").json()
    assert (got["name"], got["retryCount"], got["responseTimeoutSeconds"]) == (name, 1, 30)
    assert got["createTime"] > 0
    assert name in task_def_names(http)

    assert_empty_200(http.put("/metadata/taskdefs", json={**got, "description": "changed"}))
    again = http.get(f"/metadata/taskdefs/{name}").json()
    assert again["description"] == "changed" and again["createTime"] == got["createTime"]

    assert_empty_200(http.delete(f"/metadata/taskdefs/{name}"))
    assert_error(http.get(f"/metadata/taskdefs/{name}"), 404, name)
    # conductor-oss's SQL DAO text names no task (SqliteTaskMetadataDAO.java:64); 404 here (docs/compat.md)
    assert_error(http.delete(f"/metadata/taskdefs/{name}"), 404, "No such task definition")
    assert_error(http.put("/metadata/taskdefs", json={"name": name}), 404, name)


def test_names_with_slashes_and_spaces_are_percent_decoded(http: httpx.Client) -> None:
    name = uid("a/b c")
    assert_empty_200(http.post("/metadata/taskdefs", json=[{"name": name}]))
    encoded = name.replace("/", "%2F").replace(" ", "%20")
    assert http.get(f"/metadata/taskdefs/{encoded}").json()["name"] == name


def test_workflow_def_lifecycle(http: httpx.Client) -> None:
    name = uid("wf")
    wd = workflow_def(name, [simple_task("t1")])
    assert_empty_200(http.post("/metadata/workflow", json=wd))
    body = assert_error(http.post("/metadata/workflow", json=wd), 409, f"{name}.1")
    assert body["message"] == f"Workflow with {name}.1 already exists!"

    # overwrite as the SDK sends it (urlencode: True), then a second version
    assert_empty_200(
        http.post("/metadata/workflow", params={"overwrite": "True"}, json={**wd, "description": "v1b"})
    )
    assert_empty_200(http.post("/metadata/workflow", json={**wd, "version": 2}))

    latest = http.get(f"/metadata/workflow/{name}").json()
    assert latest["version"] == 2
    v1 = http.get(f"/metadata/workflow/{name}", params={"version": 1}).json()
    assert v1["version"] == 1 and v1["description"] == "v1b"
    assert name in names(http)
    summaries = http.get("/metadata/workflow/names-and-versions").json()[name]
    assert [s["version"] for s in summaries] == [1, 2] and all(s["name"] == name for s in summaries)
    assert [s["version"] for s in http.get(f"/metadata/workflow/{name}/versions").json()] == [1, 2]
    latest_all = {d["name"]: d["version"] for d in http.get("/metadata/workflow/latest-versions").json()}
    assert latest_all[name] == 2
    every = [(d["name"], d["version"]) for d in http.get("/metadata/workflow").json() if d["name"] == name]
    assert sorted(every) == [(name, 1), (name, 2)]

    assert_empty_200(http.delete(f"/metadata/workflow/{name}/1"))
    assert_error(http.get(f"/metadata/workflow/{name}", params={"version": 1}), 404, name)
    assert_error(http.delete(f"/metadata/workflow/{name}/1"), 404, name)
    assert http.get(f"/metadata/workflow/{name}").json()["version"] == 2


def test_missing_workflow_def_is_404_with_the_name(http: httpx.Client) -> None:
    name = uid("nowf")
    assert_error(http.get(f"/metadata/workflow/{name}"), 404, name)
    assert_error(http.get(f"/metadata/workflow/{name}", params={"version": 3}), 404, name)


def test_put_workflow_defs_is_a_bulk_upsert(http: httpx.Client) -> None:
    a, b = uid("bulk"), uid("bulk")
    r = http.put(
        "/metadata/workflow", json=[workflow_def(a, [simple_task("t")]), workflow_def(b, [simple_task("t")])]
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"bulkSuccessfulResults": [a, b], "bulkErrorResults": {}}
    r = http.put("/metadata/workflow", json=[workflow_def(a, [simple_task("t2")])])  # no conflict on upsert
    assert r.status_code == 200
    assert http.get(f"/metadata/workflow/{a}").json()["tasks"][0]["name"] == "t2"


def test_invalid_workflow_defs_are_400_with_validation_errors_and_not_stored(http: httpx.Client) -> None:
    before = names(http)
    body = assert_error(
        http.post("/metadata/workflow", json={"version": 1, "tasks": [simple_task("t")]}), 400
    )
    assert body["validationErrors"] and "instance" not in body
    empty = uid("empty")
    body = assert_error(http.post("/metadata/workflow", json={"name": empty, "tasks": []}), 400)
    assert any("tasks" in e["path"] for e in body["validationErrors"]), body
    assert names(http) == before

    assert_empty_200(
        http.post("/metadata/workflow/validate", json=workflow_def(uid("ok"), [simple_task("t")]))
    )
    body = assert_error(http.post("/metadata/workflow/validate", json={"name": empty, "tasks": []}), 400)
    assert body["validationErrors"]
    assert names(http) == before


def test_wrong_types_and_shapes_change_nothing(http: httpx.Client) -> None:
    defs_before = http.get("/metadata/taskdefs").json()
    wf_before = http.get("/metadata/workflow").json()
    good = uid("good")

    assert_error(http.post("/metadata/taskdefs", json={"name": good}), 500)  # object, not array
    assert_error(
        http.post("/metadata/taskdefs", json=[{"name": good}, {"name": uid("bad"), "retryCount": "many"}]),
        500,
    )
    assert_error(http.post("/metadata/taskdefs", json=[{"name": good}, {"name": ""}]), 400)
    assert_error(http.post("/metadata/taskdefs", json=[]), 400)
    r = http.post(
        "/metadata/taskdefs", content=b'[{"name": "x"', headers={"Content-Type": "application/json"}
    )
    assert_error(r, 500, "JSON parse error")
    assert_error(http.post("/metadata/workflow", json=[workflow_def(good, [simple_task("t")])]), 500)
    assert_error(http.post("/metadata/workflow", json={"name": good, "tasks": "t1"}), 500)
    assert_error(http.put("/metadata/workflow", json=workflow_def(good, [simple_task("t")])), 500)

    assert http.get("/metadata/taskdefs").json() == defs_before
    assert http.get("/metadata/workflow").json() == wf_before
    assert http.get("/health").json()["healthy"] is True
