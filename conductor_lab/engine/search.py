"""Search parameters in conductor-oss's SQL-index syntax (``SqliteIndexQueryBuilder`` and
``PostgresIndexQueryBuilder`` in sqlite-/postgres-persistence, the default server's index).

``query`` (contract section 8.2)::

    query   := clause ( " AND " clause )*     split on the literal " AND " (upper case, single spaces)
    clause  := field \\s? op \\s? value         at the clause's start (spaces and "(" may come first)
    field   := [a-zA-Z]+                       camelCase, mapped to a column as camelCase -> snake_case
    op      := "=" | ">" | "<" | "IN"           case-sensitive; no OR, no parentheses, no !=, >=, IS NULL
    value   := the rest: quotes and parentheses removed, split on "," (IN lists)

* ``IN`` with one value is ``=``; ``=`` with a ``*`` in the value is a case-insensitive LIKE
  (``*`` -> ``%``), e.g. ``correlationId = 'order-*'``.
* ``...Time`` fields take epoch milliseconds.
* A clause that does not parse -> 400 ``Incorrectly formatted query string: <clause>``.
* Unknown fields are ignored (the store decides which fields it has).

``freeText``: ``*`` (or empty) matches everything; any other text is a case-insensitive substring
of the stored JSON document. ``sort``: ``field[:ASC|DESC]``, several separated by ``|``.

Where conductor-oss answers with garbage or a 500, this module answers 400 (docs/compat.md,
"Search"): a non-numeric time value, ``>=`` / ``<=``, and a clause that does not start with its
field. (conductor-oss looks for the pattern anywhere in the clause, so ``status != RUNNING``
matched ``RUNN`` ``IN`` ``G``, an unknown field, and the clause was silently dropped.)
"""

from __future__ import annotations

import re
from typing import Any

from conductor_lab.engine.store.base import SearchQuery
from conductor_lab.errors import InvalidInput

__all__ = ["MAX_WORKFLOW_SIZE", "SearchQuery", "parse", "parse_query", "parse_sort", "snake"]

#: workflow search (``/api/workflow/search*``) refuses larger pages (``@Max(5000)`` upstream)
MAX_WORKFLOW_SIZE = 5000

_CLAUSE = re.compile(r"[\s(]*([a-zA-Z]+)\s?(=|>|<|IN)\s?(.*)", re.DOTALL)
_STRIP = re.compile(r"[\"'()]")
_SNAKE = re.compile(r"\B([A-Z])")


def snake(name: str) -> str:
    """conductor-oss's ``camelToSnake``: ``workflowType`` -> ``workflow_type``."""
    return _SNAKE.sub(r"_\1", name).lower()


def _bad(clause: str) -> InvalidInput:
    return InvalidInput(f"Incorrectly formatted query string: {clause}")


def parse_clause(clause: str) -> tuple[str, str, Any]:
    """One clause -> ``(field, op, value)``; op is ``=``, ``>``, ``<``, ``IN`` (value: a list) or ``LIKE``."""
    m = _CLAUSE.match(clause)
    if m is None:
        raise _bad(clause)
    field, op, raw = m.group(1), m.group(2), _STRIP.sub("", m.group(3))
    if op in (">", "<") and raw.lstrip().startswith("="):
        raise _bad(clause)  # ">=" / "<=": not in the grammar
    values = [v.strip() for v in raw.split(",")] if op == "IN" else [raw.strip()]
    if op == "IN" and len(values) == 1:
        op = "="
    if field.endswith("Time"):
        try:
            ints = [int(v) for v in values]
        except ValueError:
            raise _bad(clause) from None
        if any(not -(2**63) <= i < 2**63 for i in ints):  # Java's Long.parseLong fails too
            raise _bad(clause)
        return (field, op, ints) if op == "IN" else (field, op, ints[0])
    if op == "IN":
        return field, op, values
    value = values[0]
    if op == "=" and "*" in value:
        return field, "LIKE", value.replace("*", "%")
    return field, op, value


def parse_query(query: str | None) -> list[tuple[str, str, Any]]:
    if query is None or not query.strip():
        return []
    return [parse_clause(part) for part in query.split(" AND ")]


def parse_sort(sort: str | None) -> list[tuple[str, bool]]:
    """``field[:ASC|DESC]|...`` -> ``[(field, ascending)]``; items with another direction are dropped."""
    order: list[tuple[str, bool]] = []
    for item in (sort or "").split("|"):
        name, sep, direction = item.strip().partition(":")
        direction = direction.strip().upper() if sep else "ASC"
        if name.strip() and direction in ("ASC", "DESC"):
            order.append((name.strip(), direction == "ASC"))
    return order


def parse(
    *,
    start: int = 0,
    size: int = 100,
    sort: str | None = None,
    free_text: str | None = "*",
    query: str | None = None,
) -> SearchQuery:
    """The search parameters of conductor-oss's REST resources -> a ``SearchQuery``."""
    if start < 0 or size < 0:
        raise InvalidInput("start and size must not be negative")
    text = free_text.strip() if free_text else ""
    return SearchQuery(
        clauses=parse_query(query),
        free_text=text if text not in ("", "*") else None,
        sort=parse_sort(sort),
        start=start,
        size=size,
    )
