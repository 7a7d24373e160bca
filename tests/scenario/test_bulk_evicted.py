"""Bulk verbs on finished workflows that are no longer in memory: they are read back from DuckDB
(one read per group) and changed like the ones in memory."""

from __future__ import annotations

import asyncio
from pathlib import Path

from conductor_lab.engine.executor import Executor
from conductor_lab.engine.store.duckdb import DuckDBStore


def test_bulk_retry_of_evicted_workflows(tmp_path: Path) -> None:
    async def main() -> None:
        ex = Executor(DuckDBStore(tmp_path / "c.duckdb"), finished_cache=2)
        await ex.start()
        try:
            await ex.register_task_defs([{"name": "job", "retryCount": 0, "responseTimeoutSeconds": 60}])
            await ex.register_workflow_def({"name": "one", "tasks": [{"name": "job", "taskReferenceName": "job"}]})
            ids = [await ex.start_workflow({"name": "one", "input": {"i": i}}) for i in range(6)]
            for t in await ex.poll("job", worker_id="w", count=10, timeout_ms=0):
                await ex.update_task({"workflowInstanceId": t.workflowInstanceId, "taskId": t.taskId,
                                      "status": "FAILED", "reasonForIncompletion": "boom"})  # fmt: skip
            assert sum(1 for wid in ids if wid in ex.workflows) == 2  # the others were evicted
            ok, errors = await ex.bulk("retry", ids + ["missing"])
            assert ok == ids and list(errors) == ["missing"]
            for wid in ids:
                wf = await ex.get_workflow(wid)
                assert wf.status == "RUNNING"
                assert [(t.status.value, t.retryCount) for t in wf.tasks] == [("FAILED", 0), ("SCHEDULED", 1)]
            assert len(await ex.poll("job", worker_id="w", count=10, timeout_ms=0)) == 6
        finally:
            await ex.close()

    asyncio.run(main())
