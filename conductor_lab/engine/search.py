"""Workflow search: conductor-oss's SQL-index query syntax and WorkflowSummary rendering."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from conductor_lab.engine.params import to_java_string
from conductor_lab.engine.store.base import SearchQuery
from conductor_lab.errors import InvalidInput

MAX_SIZE = 5000
_CLAUSE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(=|>|<|IN\b)\s*(.+?)\s*$", re.IGNORECASE)


def _strip(value: str) -> str:
    return value.strip().strip("()").strip().strip("'\"")


def parse(*, start: int, size: int, sort: str | None, free_text: str | None, query: str | None) -> SearchQuery:
    """Parse search parameters (clauses joined by ``AND``; ``=``, ``>``, ``<``, ``IN``; ``*`` wildcards)."""
    if size > MAX_SIZE:
        raise InvalidInput(f"Cannot return more than {MAX_SIZE} workflows. Please use pagination.")
    if start < 0 or size < 0:
        raise InvalidInput("start and size must not be negative")
    clauses: list[tuple[str, str, Any]] = []
    if query and query.strip():
        for part in query.split(" AND "):
            m = _CLAUSE.match(part)
            if m is None:
                raise InvalidInput(f"Incorrectly formatted query string: {query}")
            fld, op, raw = m.group(1), m.group(2).upper(), m.group(3)
            if op == "IN":
                values = [_strip(v) for v in raw.strip().strip("()").split(",") if _strip(v)]
                if len(values) == 1:
                    clauses.append((fld, "=", values[0]))
                else:
                    clauses.append((fld, "IN", values))
                continue
            value = _strip(raw)
            if op == "=" and "*" in value:
                clauses.append((fld, "LIKE", value.replace("*", "%")))
            elif fld.endswith("Time") or fld == "version":
                try:
                    clauses.append((fld, op, int(value)))
                except ValueError:
                    raise InvalidInput(f"Incorrectly formatted query string: {query}") from None
            else:
                clauses.append((fld, op, value))
    order: list[tuple[str, bool]] = []
    if sort:
        for item in sort.split("|"):
            if not item.strip():
                continue
            name, _, direction = item.partition(":")
            order.append((name.strip(), direction.strip().upper() != "DESC"))
    text = free_text if free_text and free_text.strip() not in ("", "*") else None
    return SearchQuery(clauses=clauses, free_text=text, sort=order, start=start, size=size)


def iso(ms: int | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def summary(wf: dict[str, Any]) -> dict[str, Any]:
    """WorkflowSummary from a workflow's stored state JSON (contract 3.11)."""
    start = wf.get("createTime") or 0
    end = wf.get("endTime") or 0
    inp = to_java_string(wf.get("input") or {})
    out = to_java_string(wf.get("output") or {})
    s: dict[str, Any] = {
        "workflowType": wf.get("workflowName"),
        "version": wf.get("workflowVersion"),
        "workflowId": wf.get("workflowId"),
        "correlationId": wf.get("correlationId"),
        "startTime": iso(start),
        "updateTime": iso(wf.get("updateTime")),
        "endTime": iso(end) if end else None,
        "status": wf.get("status"),
        "input": inp,
        "output": out,
        "reasonForIncompletion": wf.get("reasonForIncompletion"),
        "executionTime": end - start if end else 0,
        "event": wf.get("event"),
        "failedReferenceTaskNames": ",".join(wf.get("failedReferenceTaskNames") or []),
        "failedTaskNames": wf.get("failedTaskNames") or [],
        "priority": wf.get("priority") or 0,
        "taskToDomain": wf.get("taskToDomain") or {},
        "parentWorkflowId": wf.get("parentWorkflowId") or "",
        "inputSize": len(inp),
        "outputSize": len(out),
    }
    return {k: v for k, v in s.items() if v is not None}
