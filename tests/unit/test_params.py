"""Table-driven tests for the ``${...}`` parameter-expression language (contract §5).

Expected values that depend on upstream quirks (Java ``toString()``, ``$${`` unescaping, what an
unterminated ``${`` does, trailing blanks in a path) were checked against conductor-oss's
``ParametersUtils.replaceVariables`` running on Jayway JsonPath.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from conductor_lab.engine.params import evaluate, has_expressions, resolve_path, to_java_string

TASK_ID = "task-42"

WORKFLOW_INPUT: dict[str, Any] = {
    "n": 5,
    "user": {"id": "u1", "tags": ["a", "b"]},
    "list": [1, 2],
    "f": 1.0,
    "big": 1e20,
    "b": True,
    "nul": None,
    "s": "str",
    "which": "n",
    "path": "workflow.input.n",
    "nums": [1, 2.5, "x", True],
    "empty": [],
    "items": [
        {"id": 1, "price": 5, "name": "x"},
        {"id": 2, "price": 20, "name": "y"},
        {"id": 3, "price": 15},
    ],
    "nested": {"a": {"b": {"c": [10, 20, {"d": "deep"}]}}},
    "content-type": "ct",
    "odd key": 1,
    "0": "zero",
    "esc": "$${x}",
    "m": {"k1": 1, "k2": {"z": None}},
}

DOC: dict[str, Any] = {
    "workflow": {
        "input": WORKFLOW_INPUT,
        "output": {},
        "status": "RUNNING",
        "workflowId": "wf-1",
        "variables": {"counter": 3},
        "schemaVersion": 2,
    },
    "t1": {
        "input": {"x": 1},
        "output": {"content-type": "json", "items": [{"id": "a"}, {"id": "b"}], "v": 1.5},
        "status": "COMPLETED",
        "retryCount": 0,
    },
}


def assert_same(actual: Any, expected: Any) -> None:
    """Equality that also checks types all the way down (so 5 != 5.0 and True != 1)."""
    assert type(actual) is type(expected), f"{actual!r} is {type(actual).__name__}, expected {expected!r}"
    if isinstance(expected, dict):
        assert list(actual) == list(expected)
        for key in expected:
            assert_same(actual[key], expected[key])
    elif isinstance(expected, list):
        assert len(actual) == len(expected)
        for got, want in zip(actual, expected, strict=True):
            assert_same(got, want)
    else:
        assert actual == expected


# --------------------------------------------------------------------------------------------
# evaluate(): one string template against DOC

EVALUATE_CASES: list[tuple[str, str, Any]] = [
    # contract §5.4 examples
    ("whole-int", "${workflow.input.n}", 5),
    ("whole-map", "${workflow.input.user}", {"id": "u1", "tags": ["a", "b"]}),
    ("embedded-str", "user=${workflow.input.user.id}", "user=u1"),
    ("embedded-map-java-syntax", "${workflow.input.user} x", "{id=u1, tags=[a, b]} x"),
    ("whole-missing", "${workflow.input.missing}", None),
    ("embedded-missing", "a-${workflow.input.missing}", "a-null"),
    ("list-index", "${workflow.input.list[1]}", 2),
    ("length-function", "${workflow.input.list.length()}", 2),
    ("escape", "$${workflow.input.n}", "${workflow.input.n}"),
    ("task-status", "${t1.status}", "COMPLETED"),
    ("task-output", "${t1.output}", DOC["t1"]["output"]),
    ("variables", "${workflow.variables.counter}", 3),
    ("workflow-id", "${workflow.workflowId}", "wf-1"),
    ("task-id", "${CPEWF_TASK_ID}", TASK_ID),
    ("task-id-embedded", "id=${CPEWF_TASK_ID}", f"id={TASK_ID}"),
    # JSON types kept on a whole-string reference
    ("whole-float", "${workflow.input.f}", 1.0),
    ("whole-bool", "${workflow.input.b}", True),
    ("whole-explicit-null", "${workflow.input.nul}", None),
    ("whole-list", "${workflow.input.list}", [1, 2]),
    ("whole-task-map", "${t1.input}", {"x": 1}),
    ("whole-int-field", "${t1.retryCount}", 0),
    ("whole-empty-map", "${workflow.output}", {}),
    # Java toString() when interpolating
    ("embedded-float", "f=${workflow.input.f}", "f=1.0"),
    ("embedded-float-exponent", "big=${workflow.input.big}", "big=1.0E20"),
    ("embedded-bool-null", "${workflow.input.b} ${workflow.input.nul}", "true null"),
    ("embedded-nested-map-list", "${workflow.input.m} ${workflow.input.list}", "{k1=1, k2={z=null}} [1, 2]"),
    ("two-refs-adjacent", "${workflow.input.n}${workflow.input.s}", "5str"),
    ("two-refs-text", "${t1.status}/${workflow.workflowId}", "COMPLETED/wf-1"),
    ("value-containing-escape-unescaped", "x${workflow.input.esc}", "x${x}"),
    ("whole-value-containing-escape-kept", "${workflow.input.esc}", "$${x}"),
    ("braces-around", "{${workflow.input.n}}", "{5}"),
    ("extra-closing-brace", "${workflow.input.n}}", "5}"),
    # escaping
    ("escape-next-to-live-ref", "$${workflow.input.n} ${workflow.input.n}", "${workflow.input.n} 5"),
    ("triple-dollar", "$$${workflow.input.n}", "$${workflow.input.n}"),
    # blank path
    ("blank", "${}", ""),
    ("blank-spaces", "${  }", ""),
    ("blank-embedded", "a${}b", "ab"),
    # unterminated: left literal, and upstream finds no reference after it
    ("unterminated", "${workflow.input.n", "${workflow.input.n"),
    ("unterminated-after-ref", "${workflow.input.n} ${workflow.input.n", "5 ${workflow.input.n"),
    ("unterminated-before-ref", "a ${b ${workflow.input.n}", "a ${b ${workflow.input.n}"),
    # nested references
    ("nested", "${workflow.input.${workflow.input.which}}", 5),
    ("nested-whole-path", "${${workflow.input.path}}", 5),
    ("nested-embedded", "x${${workflow.input.path}}", "x5"),
    ("nested-missing-inner", "${workflow.input.${workflow.input.missing}}", None),
    # paths
    ("bracket-dash-key", "${t1.output['content-type']}", "json"),
    ("bracket-double-quotes", '${t1.output["content-type"]}', "json"),
    ("dash-in-dot-notation", "${workflow.input.content-type}", "ct"),
    ("bracket-space-key", "${workflow.input['odd key']}", 1),
    ("bracket-root", "${['workflow']['input']['n']}", 5),
    ("dollar-root", "${$.workflow.input.n}", 5),
    ("dollar-bracket-root", "${$['workflow'].input.n}", 5),
    ("numeric-key", "${workflow.input.0}", "zero"),
    ("numeric-key-bracket", "${workflow.input['0']}", "zero"),
    ("deep-path", "${workflow.input.nested.a.b.c[2].d}", "deep"),
    ("index-then-key", "${workflow.input.items[0].id}", 1),
    ("negative-index", "${workflow.input.list[-1]}", 2),
    ("negative-index-then-key", "${workflow.input.items[-1].price}", 15),
    ("index-with-blanks", "${workflow.input.list[ 1 ]}", 2),
    ("index-out-of-range", "${workflow.input.list[5]}", None),
    ("negative-index-out-of-range", "${workflow.input.list[-5]}", None),
    ("index-on-map", "${workflow.input.user[0]}", None),
    ("index-on-string", "${workflow.input.s[0]}", None),
    ("key-on-list", "${workflow.input.list.id}", None),
    ("key-through-null", "${workflow.input.nul.x}", None),
    ("trailing-blank-ignored", "${workflow.input.n }", 5),
    ("leading-blank-invalid", "${ workflow.input.n}", None),
    ("trailing-dot-invalid", "${workflow.input.}", None),
    ("whole-doc-entry", "${t1.input.x}", 1),
    # indefinite paths yield lists
    ("wildcard", "${workflow.input.items[*].id}", [1, 2, 3]),
    ("wildcard-task-output", "${t1.output.items[*].id}", ["a", "b"]),
    ("wildcard-on-map", "${workflow.input.user.*}", ["u1", ["a", "b"]]),
    ("wildcard-missing", "${workflow.input.missing[*]}", []),
    ("deep-scan", "${t1..id}", ["a", "b"]),
    ("deep-scan-dollar", "${$.workflow.input.items..price}", [5, 20, 15]),
    ("deep-scan-missing", "${workflow.input.missing..id}", []),
    ("filter", "${workflow.input.items[?(@.price > 10)].id}", [2, 3]),
    ("filter-objects", "${workflow.input.items[?(@.price > 15)]}", [{"id": 2, "price": 20, "name": "y"}]),
    ("filter-string-eq", "${workflow.input.items[?(@.name == 'x')].id}", [1]),
    ("filter-exists", "${workflow.input.items[?(@.name)].name}", ["x", "y"]),
    ("filter-no-match", "${workflow.input.items[?(@.price > 100)]}", []),
    ("filter-on-scalars", "${workflow.input.list[?(@ > 1)]}", [2]),
    ("slice", "${workflow.input.list[0:1]}", [1]),
    ("slice-open-start", "${workflow.input.list[:1]}", [1]),
    ("slice-negative", "${workflow.input.list[-1:]}", [2]),
    ("slice-then-key", "${workflow.input.items[0:2].id}", [1, 2]),
    # an indefinite result is a json-smart JSONArray upstream: its toString() is compact JSON
    ("wildcard-embedded-json", "ids=${workflow.input.items[*].id}", "ids=[1,2,3]"),
    ("wildcard-embedded-json-strings", "tags=${workflow.input.user.tags[*]}", 'tags=["a","b"]'),
    (
        "filter-embedded-json",
        "hit=${workflow.input.items[?(@.price > 15)]}",
        'hit=[{"id":2,"price":20,"name":"y"}]',
    ),
    ("deep-scan-embedded-json", "${t1..id} ids", '["a","b"] ids'),
    ("definite-list-embedded-java", "${t1.output.items}", [{"id": "a"}, {"id": "b"}]),
    ("definite-list-embedded-java-syntax", "${t1.output.items} x", "[{id=a}, {id=b}] x"),
    # functions
    ("size", "${workflow.input.list.size()}", 2),
    ("length-of-map", "${workflow.input.user.length()}", 2),
    ("length-of-string-is-null", "${workflow.input.s.length()}", None),
    ("length-of-missing", "${workflow.input.missing.length()}", None),
    ("length-of-root", "${length()}", 2),
    ("sum-is-double", "${workflow.input.list.sum()}", 3.0),
    ("sum-skips-non-numbers", "${workflow.input.nums.sum()}", 3.5),
    ("min", "${workflow.input.list.min()}", 1.0),
    ("max", "${workflow.input.list.max()}", 2.0),
    ("avg", "${workflow.input.list.avg()}", 1.5),
    ("stddev", "${workflow.input.list.stddev()}", 0.5),
    ("sum-of-strings", "${t1.output.items[*].id.sum()}", None),
    ("sum-of-empty", "${workflow.input.empty.sum()}", None),
    ("sum-of-scalar", "${workflow.input.n.sum()}", None),
    ("keys", "${workflow.input.user.keys()}", ["id", "tags"]),
    ("first", "${workflow.input.list.first()}", 1),
    ("last", "${workflow.input.list.last()}", 2),
    ("first-of-empty", "${workflow.input.empty.first()}", None),
    ("keys-embedded-java-syntax", "${workflow.input.user.keys()} k", "[id, tags] k"),
    ("function-after-deep-scan", "${$..price.max()}", 20.0),
    # deliberate: the function applies to the collected list (Jayway 2.10 gives null / [null, ...])
    ("function-after-wildcard", "${workflow.input.items[*].price.sum()}", 40.0),
    ("function-after-filter", "${workflow.input.items[?(@.price > 10)].id.length()}", 2),
    ("function-embedded", "n=${workflow.input.list.length()}", "n=2"),
    ("unsupported-function", '${workflow.input.list.concat("x")}', None),
    # special names
    ("secret-left-literal", "${workflow.secrets.token}", "${workflow.secrets.token}"),
    ("secret-left-literal-embedded", "Bearer ${workflow.secrets.token}", "Bearer ${workflow.secrets.token}"),
    ("doc-key-single-segment", "${t1}", DOC["t1"]),
    # no references at all
    ("plain", "hello", "hello"),
    ("empty-string", "", ""),
    ("dollar-without-brace", "costs $5 {x}", "costs $5 {x}"),
]


@pytest.mark.parametrize(
    ("template", "expected"), [c[1:] for c in EVALUATE_CASES], ids=[c[0] for c in EVALUATE_CASES]
)
def test_evaluate_string(template: str, expected: Any) -> None:
    assert_same(evaluate(template, DOC, task_id=TASK_ID), expected)


WITHOUT_TASK_ID_CASES: list[tuple[str, str, Any]] = [
    ("whole", "${CPEWF_TASK_ID}", "${CPEWF_TASK_ID}"),
    ("embedded", "id=${CPEWF_TASK_ID}", "id=${CPEWF_TASK_ID}"),
    ("other-refs-still-resolved", "${CPEWF_TASK_ID}:${workflow.input.n}", "${CPEWF_TASK_ID}:5"),
]


@pytest.mark.parametrize(
    ("template", "expected"),
    [c[1:] for c in WITHOUT_TASK_ID_CASES],
    ids=[c[0] for c in WITHOUT_TASK_ID_CASES],
)
def test_task_id_left_literal_without_task_id(template: str, expected: Any) -> None:
    assert_same(evaluate(template, DOC), expected)


# --------------------------------------------------------------------------------------------
# Environment

ENV = {
    "CONDUCTOR_LAB_TEST_VAR": "from-env",
    "t1": "env-loses-to-task-ref",
    "CONDUCTOR_ENV_REGION": "eu-west-1",
    "CONDUCTOR_ENV_CFG": '{"a": {"b": 7}, "l": [1, 2]}',
    "CONDUCTOR_ENV_BROKEN": "{not json",
}
UNSET = ("NETFLIX_ENV", "NETFLIX_STACK", "CONDUCTOR_ENV_NOPE", "CONDUCTOR_LAB_TEST_UNSET")

ENV_CASES: list[tuple[str, str, Any]] = [
    ("os-env-var", "${CONDUCTOR_LAB_TEST_VAR}", "from-env"),
    ("os-env-var-embedded", "v=${CONDUCTOR_LAB_TEST_VAR}", "v=from-env"),
    ("task-ref-wins-over-env", "${t1.status}", "COMPLETED"),
    # deliberate: upstream checks the environment first; here task refs and `workflow` win
    ("doc-key-wins-over-env", "${t1}", DOC["t1"]),
    ("unset-name-is-missing", "${CONDUCTOR_LAB_TEST_UNSET}", None),
    ("unset-system-parameter-literal", "${NETFLIX_ENV}", "${NETFLIX_ENV}"),
    ("unset-system-parameter-literal-embedded", "a ${NETFLIX_STACK}", "a ${NETFLIX_STACK}"),
    ("workflow-env", "${workflow.env.REGION}", "eu-west-1"),
    ("workflow-env-embedded", "r=${workflow.env.REGION}", "r=eu-west-1"),
    ("workflow-env-json-path", "${workflow.env.CFG.a.b}", 7),
    ("workflow-env-json-index", "${workflow.env.CFG.l[1]}", 2),
    ("workflow-env-invalid-json", "${workflow.env.BROKEN.a}", None),
    ("workflow-env-unset", "${workflow.env.NOPE}", None),
    ("workflow-env-unset-embedded", "e=${workflow.env.NOPE}", "e=null"),
]


@pytest.mark.parametrize(("template", "expected"), [c[1:] for c in ENV_CASES], ids=[c[0] for c in ENV_CASES])
def test_environment(monkeypatch: pytest.MonkeyPatch, template: str, expected: Any) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    assert_same(evaluate(template, DOC, task_id=TASK_ID), expected)


def test_env_var_read_at_evaluation_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONDUCTOR_LAB_TEST_VAR", "first")
    assert evaluate("${CONDUCTOR_LAB_TEST_VAR}", DOC) == "first"
    monkeypatch.setenv("CONDUCTOR_LAB_TEST_VAR", "second")
    assert evaluate("${CONDUCTOR_LAB_TEST_VAR}", DOC) == "second"


# --------------------------------------------------------------------------------------------
# Structures

STRUCTURE_CASES: list[tuple[str, Any, Any]] = [
    ("int", 7, 7),
    ("float", 2.5, 2.5),
    ("bool", False, False),
    ("none", None, None),
    ("empty-dict", {}, {}),
    ("empty-list", [], []),
    (
        "dict",
        {"a": "${workflow.input.n}", "b": "x-${workflow.input.s}", "c": 1, "d": None},
        {"a": 5, "b": "x-str", "c": 1, "d": None},
    ),
    ("keys-not-evaluated", {"${workflow.input.s}": "${workflow.input.s}"}, {"${workflow.input.s}": "str"}),
    (
        "nested",
        {
            "outer": {
                "inner": [
                    "${workflow.input.list[0]}",
                    {"deep": "${t1.output.v}"},
                    [True, "${workflow.input.nul}"],
                ]
            }
        },
        {"outer": {"inner": [1, {"deep": 1.5}, [True, None]]}},
    ),
    ("list", ["${workflow.input.n}", "${workflow.input.f}", 3], [5, 1.0, 3]),
    ("tuple-becomes-list", ("${workflow.input.n}",), [5]),
]


@pytest.mark.parametrize(
    ("template", "expected"), [c[1:] for c in STRUCTURE_CASES], ids=[c[0] for c in STRUCTURE_CASES]
)
def test_evaluate_structures(template: Any, expected: Any) -> None:
    assert_same(evaluate(template, DOC, task_id=TASK_ID), expected)


def test_neither_template_nor_doc_is_mutated() -> None:
    template = {
        "a": "${workflow.input.user}",
        "b": ["${t1.output}", {"c": "${workflow.input.items[*]}"}],
        "d": "${workflow.input.${workflow.input.which}}",
    }
    template_before = copy.deepcopy(template)
    doc_before = copy.deepcopy(DOC)
    result = evaluate(template, DOC, task_id=TASK_ID)
    assert template == template_before
    assert DOC == doc_before
    assert result is not template
    assert result["b"] is not template["b"]


def test_result_does_not_alias_doc() -> None:
    """A scheduled task's input must not change when the document changes later (contract §5.1)."""
    doc = {"workflow": {"input": {}, "variables": {"cfg": {"retries": [1, 2]}}}}
    result = evaluate({"cfg": "${workflow.variables.cfg}", "all": "${workflow.variables}"}, doc)
    doc["workflow"]["variables"]["cfg"]["retries"].append(3)
    doc["workflow"]["variables"]["new"] = True
    assert result == {"cfg": {"retries": [1, 2]}, "all": {"cfg": {"retries": [1, 2]}}}


def test_strings_without_references_are_returned_as_is() -> None:
    text = "no references here, only $ and { }"
    assert evaluate(text, DOC) is text


def test_repeated_evaluation_is_stable() -> None:
    template = {"a": "${workflow.input.n}-${t1.status}", "b": "${workflow.input.user}"}
    first = evaluate(template, DOC, task_id=TASK_ID)
    second = evaluate(template, DOC, task_id=TASK_ID)
    assert first == second == {"a": "5-COMPLETED", "b": {"id": "u1", "tags": ["a", "b"]}}
    assert first["b"] is not second["b"]


def test_later_values_are_read_again() -> None:
    """Parsed templates are cached, resolved values are not."""
    template = "${workflow.input.n}"
    assert evaluate(template, {"workflow": {"input": {"n": 1}}}) == 1
    assert evaluate(template, {"workflow": {"input": {"n": 2}}}) == 2


# --------------------------------------------------------------------------------------------
# resolve_path()

RESOLVE_CASES: list[tuple[str, str, Any]] = [
    ("dotted", "workflow.input.user.id", "u1"),
    ("dollar-prefix", "$.workflow.input.n", 5),
    ("root", "$", DOC),
    ("top-level-key", "t1", DOC["t1"]),
    ("bracket", "t1.output['content-type']", "json"),
    ("index", "workflow.input.items[1].name", "y"),
    ("negative-index", "workflow.input.list[-2]", 1),
    ("missing", "workflow.nope.deeper", None),
    ("wildcard", "workflow.input.items[*].price", [5, 20, 15]),
    ("deep-scan", "$..d", ["deep"]),
    ("filter", "workflow.input.items[?(@.id == 3)].price", [15]),
    ("function", "workflow.input.items.length()", 3),
    ("invalid", "workflow.input[", None),
    ("invalid-filter", "workflow.input.items[?(@.price >)]", None),
]


@pytest.mark.parametrize(
    ("path", "expected"), [c[1:] for c in RESOLVE_CASES], ids=[c[0] for c in RESOLVE_CASES]
)
def test_resolve_path(path: str, expected: Any) -> None:
    assert_same(resolve_path(DOC, path), expected)


# --------------------------------------------------------------------------------------------
# to_java_string()

JAVA_STRING_CASES: list[tuple[str, Any, str]] = [
    ("none", None, "null"),
    ("true", True, "true"),
    ("false", False, "false"),
    ("int", 5, "5"),
    ("negative-int", -12, "-12"),
    ("big-int", 2**63, "9223372036854775808"),
    ("float-integral", 1.0, "1.0"),
    ("float", 2.5, "2.5"),
    ("float-negative-zero", -0.0, "-0.0"),
    ("float-small-plain", 0.001, "0.001"),
    ("float-small-exponent", 0.0001, "1.0E-4"),
    ("float-large-plain", 1234567.5, "1234567.5"),
    ("float-large-exponent", 12345678.0, "1.2345678E7"),
    ("float-huge", 1e20, "1.0E20"),
    ("float-negative-exponent", -1.5e-5, "-1.5E-5"),
    ("float-nan", float("nan"), "NaN"),
    ("float-infinity", float("inf"), "Infinity"),
    ("string", "plain text", "plain text"),
    ("empty-map", {}, "{}"),
    ("map", {"a": 1, "b": "x"}, "{a=1, b=x}"),
    ("map-insertion-order", {"z": 1, "a": 2}, "{z=1, a=2}"),
    ("nested-map", {"a": {"b": [1, None, True]}, "c": 1.0}, "{a={b=[1, null, true]}, c=1.0}"),
    ("empty-list", [], "[]"),
    ("list", [1, 2], "[1, 2]"),
    ("list-of-maps", [{"id": "u1"}, "s"], "[{id=u1}, s]"),
]


@pytest.mark.parametrize(
    ("value", "expected"), [c[1:] for c in JAVA_STRING_CASES], ids=[c[0] for c in JAVA_STRING_CASES]
)
def test_to_java_string(value: Any, expected: str) -> None:
    assert to_java_string(value) == expected


# --------------------------------------------------------------------------------------------
# has_expressions()

HAS_EXPRESSIONS_CASES: list[tuple[str, Any, bool]] = [
    ("plain-string", "hello", False),
    ("reference", "${workflow.input.n}", True),
    ("escaped-still-counts", "$${x}", True),
    ("dollar-only", "$5 {x}", False),
    ("scalar", 5, False),
    ("none", None, False),
    ("empty-dict", {}, False),
    ("dict-value", {"a": 1, "b": "x ${t1.output}"}, True),
    ("dict-key-only", {"${x}": 1}, False),
    ("nested-list", {"a": [1, [2, {"b": "${y}"}]]}, True),
    ("nested-without", {"a": [1, [2, {"b": "y"}]]}, False),
]


@pytest.mark.parametrize(
    ("template", "expected"),
    [c[1:] for c in HAS_EXPRESSIONS_CASES],
    ids=[c[0] for c in HAS_EXPRESSIONS_CASES],
)
def test_has_expressions(template: Any, expected: bool) -> None:
    assert has_expressions(template) is expected
