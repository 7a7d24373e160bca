"""Conductor's ``${...}`` parameter-expression language. Pure: no I/O, no mutation.

Upstream: ``core/src/main/java/com/netflix/conductor/core/utils/ParametersUtils.java``
(``replaceVariables``) and ``common/src/main/java/com/netflix/conductor/common/utils/EnvUtils.java``;
contract §5. The rules, in the order upstream applies them to one ``${path}``:

* ``${}`` / ``${  }`` -> ``""``.
* ``${workflow.secrets.X}`` -> left as written (secrets are substituted at poll time, not here).
* ``${workflow.env.NAME[.jsonpath]}`` -> env var ``CONDUCTOR_ENV_NAME`` (None if unset), optionally
  parsed as JSON and read with the path.
* ``${CPEWF_TASK_ID}`` -> ``task_id`` when given, else left as written.
* a single-segment name that is not a key of ``doc`` but is an OS environment variable (``${HOME}``)
  -> its value. Upstream checks the environment first; here task refs and ``workflow`` win.
* anything else is a Jayway-style JsonPath read from ``doc`` with errors suppressed (-> None).

A string that is exactly one reference keeps the value's JSON type (containers are copied, so the
result never aliases ``doc``). Otherwise every reference is replaced by the value's Java
``toString()`` (:func:`to_java_string`; the list an indefinite path yields renders as compact JSON,
as upstream's json-smart array does) and, after interpolation, ``$${`` is unescaped to ``${``.
Nested references (``${a.${b}}``) are resolved inner first and always stringified. After an
unterminated ``${`` no further reference is recognised (upstream's regex behaves so).

Paths: dotted names, ``['key']`` / ``["key"]``, indexes (negative too), a leading ``$.`` optional;
wildcards, deep scans, filters and slices yield a list; a trailing ``.length()`` / ``.size()`` /
``.sum()`` / ``.min()`` / ``.max()`` / ``.avg()`` / ``.stddev()`` / ``.keys()`` / ``.first()`` /
``.last()`` applies to the value the rest of the path reads (to the whole list for an indefinite
path). Aggregations return floats, as Jayway's return ``Double``.

Hot path: strings without ``${`` are returned untouched; parsed templates and compiled paths are
cached; a plain dotted/indexed path is a loop of dict/list lookups. Only wildcards, deep scans,
filters and slices go through the ``python-jsonpath`` library.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from functools import lru_cache
from typing import Any, NamedTuple

import jsonpath

__all__ = ["evaluate", "has_expressions", "resolve_path", "to_java_string"]

_ENV_VAR_PREFIX = "CONDUCTOR_ENV_"  # default EnvironmentDAO: ${workflow.env.NAME} -> $CONDUCTOR_ENV_NAME
_SECRETS_PREFIX = "workflow.secrets."
_ENV_PREFIX = "workflow.env."
_TASK_ID_PARAM = "CPEWF_TASK_ID"
# EnvUtils.SystemParameters: always "environment variables"; left literal when unset.
_SYSTEM_PARAMETERS = frozenset({"NETFLIX_ENV", "NETFLIX_STACK"})

# What a reference resolves to when upstream adds no replacement: the text stays as written.
_LITERAL: Any = object()

# --------------------------------------------------------------------------------------------
# Paths


_FUNCTIONS = frozenset({"length", "size", "sum", "min", "max", "avg", "stddev", "keys", "first", "last"})
_FUNCTION_RE = re.compile(r"(?:^|\.)([a-z]+)\(\)$")
_NAME_RE = re.compile(r"[^.\[\]()\s*?'\"]+")
_BRACKET_RE = re.compile(r"""\[\s*(?:(-?\d+)|'([^'\\]*)'|"([^"\\]*)")\s*\]""")


class _JsonArray(list[Any]):
    """The result of an indefinite path. Jayway returns a json-smart ``JSONArray`` there, whose
    ``toString()`` is compact JSON (``["a","b"]``), unlike a ``java.util.List`` (``[a, b]``)."""

    __slots__ = ()


class _CompiledPath:
    """A parsed path: ``keys`` for plain paths, else a python-jsonpath query (None if invalid)."""

    __slots__ = ("function", "keys", "query", "singular")

    def __init__(
        self,
        keys: tuple[str | int, ...] | None,
        query: jsonpath.JSONPath | jsonpath.CompoundJSONPath | None,
        singular: bool,
        function: str | None,
    ) -> None:
        self.keys = keys
        self.query = query
        self.singular = singular
        self.function = function

    def read(self, obj: Any) -> Any:
        keys = self.keys
        if keys is not None:
            value = obj
            for key in keys:
                if key.__class__ is str:
                    if value.__class__ is dict or isinstance(value, Mapping):
                        value = value.get(key)
                    else:
                        value = None
                elif value.__class__ is list or isinstance(value, (list, tuple)):
                    try:
                        value = value[key]  # type: ignore[index]
                    except IndexError:
                        value = None
                else:
                    value = None
                if value is None:
                    break
        elif self.query is None:
            value = None
        elif self.singular:
            match = self.query.match(obj)
            value = None if match is None else match.obj
        else:
            value = _JsonArray(match.obj for match in self.query.finditer(obj))
        if self.function is not None:
            return _apply_function(self.function, value)
        return value


def _split_plain(path: str) -> tuple[str | int, ...] | None:
    """``a.b['c-d'][0][-1]`` -> ``("a", "b", "c-d", 0, -1)``; None if the path needs JsonPath."""
    keys: list[str | int] = []
    pos, end = 0, len(path)
    while pos < end:
        if path[pos] == "[":
            match = _BRACKET_RE.match(path, pos)
            if match is None:
                return None
            index, single, double = match.groups()
            keys.append(int(index) if index is not None else single if single is not None else double)
        else:
            if pos:
                if path[pos] != ".":
                    return None
                pos += 1
            match = _NAME_RE.match(path, pos)
            if match is None:
                return None
            keys.append(match.group())
        pos = match.end()
    return tuple(keys)


@lru_cache(maxsize=4096)
def _compile_path(path: str) -> _CompiledPath:
    """Jayway semantics: a leading ``$.`` is implied, trailing blanks are ignored (leading ones make
    the path invalid) and a trailing ``.fn()`` is applied to the value the rest of the path reads."""
    path = path.rstrip()
    function = None
    match = _FUNCTION_RE.search(path)
    if match is not None and match.group(1) in _FUNCTIONS:
        function = match.group(1)
        path = path[: match.start()]
    if path == "$":
        path = ""
    elif path.startswith(("$.", "$[")):
        path = path[2:] if path[1] == "." else path[1:]
    if path[:1].isspace():
        return _CompiledPath(None, None, True, function)
    keys = _split_plain(path)
    if keys is not None:
        return _CompiledPath(keys, None, True, function)
    try:
        query = jsonpath.compile("$" + path if path.startswith("[") else "$." + path)
    except Exception:
        return _CompiledPath(None, None, True, function)
    singular = getattr(query, "singular_query", None)
    return _CompiledPath(None, query, bool(singular is not None and singular()), function)


def _read_path(obj: Any, path: str) -> Any:
    try:
        return _compile_path(path).read(obj)
    except Exception:  # upstream reads with Option.SUPPRESS_EXCEPTIONS
        return None


def resolve_path(doc: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` (a JsonPath without ``${}``; ``$.`` optional) in ``doc``; None if missing.

    Indefinite paths (wildcard, deep scan, filter, slice) return a list. The result is the object
    held by ``doc``, not a copy.
    """
    value = _read_path(doc, path)
    return list(value) if value.__class__ is _JsonArray else value


def _apply_function(name: str, value: Any) -> Any:
    """Jayway's path functions. Aggregations return floats (Java ``Double``) and skip non-numbers."""
    if name == "length" or name == "size":
        return len(value) if isinstance(value, (list, tuple, Mapping)) else None
    if name == "keys":
        return list(value.keys()) if isinstance(value, Mapping) else None
    if not isinstance(value, (list, tuple)):
        return None
    if name == "first":
        return value[0] if value else None
    if name == "last":
        return value[-1] if value else None
    numbers = [float(v) for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not numbers:
        return None
    if name == "sum":
        return math.fsum(numbers)
    if name == "min":
        return min(numbers)
    if name == "max":
        return max(numbers)
    mean = math.fsum(numbers) / len(numbers)
    if name == "avg":
        return mean
    return math.sqrt(max(math.fsum(n * n for n in numbers) / len(numbers) - mean * mean, 0.0))  # stddev


# --------------------------------------------------------------------------------------------
# Templates

_PATH, _BLANK, _SECRET, _ENV, _TASK_ID, _NAME = range(6)


class _Spec(NamedTuple):
    """How one reference path resolves (see the module docstring for the order)."""

    kind: int
    path: str
    compiled: _CompiledPath | None  # for _PATH and _NAME
    env_name: str = ""
    env_path: str = ""


@lru_cache(maxsize=4096)
def _classify(path: str) -> _Spec:
    if not path.strip():
        return _Spec(_BLANK, path, None)
    if path.startswith(_SECRETS_PREFIX):
        return _Spec(_SECRET, path, None)
    if path.startswith(_ENV_PREFIX):
        name, _, sub = path[len(_ENV_PREFIX) :].partition(".")
        return _Spec(_ENV, path, None, name, sub)
    if path == _TASK_ID_PARAM:
        return _Spec(_TASK_ID, path, None)
    kind = _NAME if "." not in path and "[" not in path and "(" not in path else _PATH
    return _Spec(kind, path, _compile_path(path))


class _Ref(NamedTuple):
    raw: str  # "${...}" as written
    spec: _Spec | None  # static path
    inner: _Template | None  # path containing nested references


class _Template(NamedTuple):
    pieces: tuple[str | _Ref, ...]
    whole: bool  # exactly one reference spanning the whole string
    const: str | None  # no references at all: the (unescaped) result


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    for pos in range(start, len(text)):
        char = text[pos]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return pos
    return -1


@lru_cache(maxsize=8192)
def _parse(text: str) -> _Template:
    """Split ``text`` into literal pieces and references, matching upstream's balanced-brace regex:
    a reference starts at ``${`` not preceded by ``$`` and ends at its balancing ``}``. After an
    unterminated ``${`` upstream finds no further reference (checked against Java), so neither do we.
    """
    pieces: list[str | _Ref] = []
    pos = literal = 0
    while True:
        start = text.find("${", pos)
        if start < 0:
            break
        if start and text[start - 1] == "$":
            pos = start + 2
            continue
        end = _closing_brace(text, start + 2)
        if end < 0:
            break
        if start > literal:
            pieces.append(text[literal:start])
        raw = text[start : end + 1]
        path = raw[2:-1]
        if "${" in path:
            pieces.append(_Ref(raw, None, _parse(path)))
        else:
            pieces.append(_Ref(raw, _classify(path), None))
        pos = literal = end + 1
    if literal < len(text):
        pieces.append(text[literal:])
    if not any(piece.__class__ is _Ref for piece in pieces):
        return _Template(tuple(pieces), False, text.replace("$${", "${"))
    return _Template(tuple(pieces), len(pieces) == 1, None)


def _resolve(ref: _Ref, doc: Mapping[str, Any], task_id: str | None) -> Any:
    spec = ref.spec
    if spec is None:
        spec = _classify(_interpolate(ref.inner, doc, task_id))  # type: ignore[arg-type]
    kind = spec.kind
    if kind == _PATH:
        try:
            return spec.compiled.read(doc)  # type: ignore[union-attr]
        except Exception:
            return None
    if kind == _NAME:
        if spec.path not in doc:
            value = os.environ.get(spec.path)
            if value is not None:
                return value
            if spec.path in _SYSTEM_PARAMETERS:
                return _LITERAL
        try:
            return spec.compiled.read(doc)  # type: ignore[union-attr]
        except Exception:
            return None
    if kind == _BLANK:
        return ""
    if kind == _SECRET:
        return ref.raw
    if kind == _TASK_ID:
        return _LITERAL if task_id is None else task_id
    value = os.environ.get(_ENV_VAR_PREFIX + spec.env_name)  # _ENV
    if value is None or not spec.env_path:
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return _read_path(parsed, spec.env_path)


def _interpolate(template: _Template, doc: Mapping[str, Any], task_id: str | None) -> str:
    if template.const is not None:
        return template.const
    parts: list[str] = []
    for piece in template.pieces:
        if piece.__class__ is str:
            parts.append(piece)  # type: ignore[arg-type]
        else:
            value = _resolve(piece, doc, task_id)  # type: ignore[arg-type]
            parts.append(piece.raw if value is _LITERAL else to_java_string(value))  # type: ignore[union-attr]
    text = "".join(parts)
    return text.replace("$${", "${") if "$${" in text else text


def _evaluate_string(text: str, doc: Mapping[str, Any], task_id: str | None) -> Any:
    template = _parse(text)
    if template.const is not None:
        return template.const
    if template.whole:
        value = _resolve(template.pieces[0], doc, task_id)  # type: ignore[arg-type]
        if value is not _LITERAL:
            return value if value.__class__ in _SCALARS else _copy(value)
    return _interpolate(template, doc, task_id)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _copy(value: Any) -> Any:
    """Copy the containers of a referenced value, so a scheduled task's input never aliases the
    document (later changes to a variable or an output must not reach an already scheduled task)."""
    cls = value.__class__
    if cls is dict:
        return {key: _copy(item) for key, item in value.items()}
    if cls is list:
        return [_copy(item) for item in value]
    if cls in _SCALARS:
        return value
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_copy(item) for item in value]
    return value


def _evaluate(value: Any, doc: Mapping[str, Any], task_id: str | None) -> Any:
    cls = value.__class__
    if cls is str:
        return _evaluate_string(value, doc, task_id) if "${" in value else value
    if cls is dict:
        return {key: _evaluate(item, doc, task_id) for key, item in value.items()}
    if cls is list:
        return [_evaluate(item, doc, task_id) for item in value]
    if isinstance(value, str):
        return _evaluate_string(str(value), doc, task_id) if "${" in value else value
    if isinstance(value, Mapping):
        return {key: _evaluate(item, doc, task_id) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_evaluate(item, doc, task_id) for item in value]
    return value


def evaluate(template: Any, doc: Mapping[str, Any], *, task_id: str | None = None) -> Any:
    """Evaluate every ``${...}`` in ``template`` against ``doc``; returns a new structure.

    Dicts keep their keys (never evaluated), lists are rebuilt, strings are evaluated, other
    scalars are returned as they are. A string that is exactly one reference yields the referenced
    value with its JSON type (containers are copied); any other string with references yields a
    string. ``task_id`` is what ``${CPEWF_TASK_ID}`` becomes (left literal when None).
    Neither ``template`` nor ``doc`` is modified.
    """
    return _evaluate(template, doc, task_id)


def has_expressions(template: Any) -> bool:
    """True if any string value anywhere in ``template`` contains ``${`` (keys are not looked at)."""
    if isinstance(template, str):
        return "${" in template
    if isinstance(template, Mapping):
        return any(has_expressions(item) for item in template.values())
    if isinstance(template, (list, tuple)):
        return any(has_expressions(item) for item in template)
    return False


# --------------------------------------------------------------------------------------------
# Java toString()


def _java_double(value: float) -> str:
    """``Double.toString``: plain decimal in [1e-3, 1e7), else ``d.dddE±n``; shortest digits."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    magnitude = abs(value)
    if magnitude == 0.0 or 1e-3 <= magnitude < 1e7:
        return repr(value)  # repr never uses an exponent in this range and keeps ".0"
    digits_tuple = Decimal(repr(magnitude)).normalize().as_tuple()
    digits = "".join(map(str, digits_tuple.digits))
    exponent = len(digits) - 1 + int(digits_tuple.exponent)
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exponent}"


def _json_smart_string(text: str) -> str:
    """json-smart's ``JSONStyle.NO_COMPRESS`` string: quoted, ``/`` escaped, some ranges as ``\\uXXXX``."""
    out = ['"']
    for char in text:
        escaped = _JSON_SMART_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char <= "\x1f" or "\x7f" <= char <= "\x9f" or "\u2000" <= char <= "\u20ff":
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


_JSON_SMART_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "/": "\\/",
}


def _to_json_smart(value: Any) -> str:
    """``JSONArray.toString()``: compact JSON the way json-smart writes it."""
    if value is None:
        return "null"
    if isinstance(value, str) and not isinstance(value, Enum):
        return _json_smart_string(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "null" if math.isnan(value) or math.isinf(value) else _java_double(value)
    if isinstance(value, int) and not isinstance(value, Enum):
        return int.__repr__(value)
    if isinstance(value, Mapping):
        items = (f"{_json_smart_string(to_java_string(k))}:{_to_json_smart(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, (list, tuple, set, frozenset)):
        return "[" + ",".join(_to_json_smart(item) for item in value) + "]"
    return _json_smart_string(to_java_string(value))


def to_java_string(value: Any) -> str:
    """Render ``value`` the way Java's ``toString()`` renders the Jackson-read equivalent:
    ``None`` -> ``null``, booleans lower case, maps ``{a=1, b=x}``, lists ``[1, 2]``, doubles with
    Java's ``Double.toString`` (``1.0``, ``1.0E10``), enums by name, strings as they are.
    (The result of an indefinite path inside :func:`evaluate` renders as compact JSON instead,
    as upstream's json-smart array does.)"""
    cls = value.__class__
    if cls is str:
        return value  # type: ignore[no-any-return]
    if value is None:
        return "null"
    if cls is bool:
        return "true" if value else "false"
    if cls is int:
        return str(value)
    if cls is float:
        return _java_double(value)
    if cls is _JsonArray:
        return _to_json_smart(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{to_java_string(k)}={to_java_string(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, set, frozenset)):
        return "[" + ", ".join(to_java_string(item) for item in value) + "]"
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _java_double(float(value))
    return str(value)
