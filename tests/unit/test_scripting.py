"""Unit tests for ``conductor_lab.engine.scripting``: QuickJS (quickjs-ng) JavaScript and jq.

Semantics follow conductor-oss ``ScriptEvaluator`` (GraalJS, fresh context per evaluation,
completion value of the script, ``evalBool``), ``Lambda`` (``function scriptFun(){...} scriptFun();``)
and ``JsonJqTransform`` (all emitted values).
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import decimal
import math
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from conductor_lab.engine import scripting
from conductor_lab.engine.scripting import (
    DEFAULT_TIMEOUT_MS,
    ScriptError,
    ScriptTimeout,
    eval_bool,
    evaluate,
    evaluate_function_body,
    java_string,
    jq_transform,
)

INPUT: dict[str, Any] = {
    "a": 1,
    "b": 2,
    "amount": 150,
    "loop": {"iteration": 1},
    "x": "hello",
    "nested": {"list": [1, 2, {"k": "v"}], "flag": True, "none": None},
}


# --------------------------------------------------------------------------------------------
# Evaluation: expressions, statements, functions


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("$.a + $.b", 3),
        ("$.amount > 100 ? 'big' : 'small'", "big"),
        ("$.x.toUpperCase()", "HELLO"),
        ("$.nested.list[2].k", "v"),
        ("$.missing", None),
        # statements: the completion value is the result (ScriptEngine.eval)
        ("if ($.loop['iteration'] < 3) { true; } else { false; }", True),
        ("if ($.loop['iteration'] > 3) { true; } else { false; }", False),
        ("var s = 0; for (var i = 0; i < 4; i++) { s += i; } s", 6),
        ("var r = {n: $.a}; r.n += 10; r", {"n": 11}),
        ("function twice(v) { return v * 2; } twice($.b);", 4),
        ("", None),
        # function-expression calls
        ("(function(){ return $.x; })()", "hello"),
        ("(() => ({sum: $.a + $.b, items: [$.a, $.b]}))()", {"sum": 3, "items": [1, 2]}),
        ("$.nested", INPUT["nested"]),
    ],
)
def test_expressions_and_statements(script: str, expected: Any) -> None:
    assert evaluate(script, INPUT) == expected


def test_bindings_are_a_deep_copy() -> None:
    data = copy.deepcopy(INPUT)
    result = evaluate("$.nested.list.push(99); $.nested.flag = false; $.a = 42; delete $.x; $", data)
    assert result["a"] == 42 and result["nested"]["list"][-1] == 99 and "x" not in result
    assert data == INPUT  # the Python input is untouched


def test_result_does_not_alias_the_input() -> None:
    data = {"list": [1, 2]}
    result = evaluate("$.list", data)
    assert result == [1, 2]
    result.append(3)
    assert data == {"list": [1, 2]}


def test_non_json_bindings() -> None:
    data = {
        "when": datetime.datetime(2024, 5, 6, 7, 8, 9),
        "price": decimal.Decimal("1.25"),
        1: "int key",
        "nan": float("nan"),
        "huge": 2**70,
    }
    result = evaluate("$", data)
    assert result["when"] == "2024-05-06T07:08:09"
    assert result["price"] == "1.25"  # default=str
    assert result["1"] == "int key"
    assert result["nan"] is None
    assert result["huge"] == float(2**70)  # beyond 64 bits: a double in JS


def test_expression_must_be_a_string() -> None:
    with pytest.raises(TypeError):
        evaluate(123, {})  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Isolation between evaluations on one (reused) context


def test_var_declarations_stay_local() -> None:
    assert evaluate("var total = 1; total", {}) == 1
    assert evaluate("typeof total", {}) == "undefined"
    assert evaluate("let t2 = 5; const t3 = 6; t2 + t3", {}) == 11
    assert evaluate("typeof t2 + ',' + typeof t3", {}) == "undefined,undefined"


def test_same_top_level_const_script_runs_twice() -> None:
    # upstream's pooled contexts fail here ("identifier already declared"); fresh contexts do not
    script = "const limit = $.a * 10; limit"
    assert evaluate(script, INPUT) == 10
    assert evaluate(script, INPUT) == 10


def test_function_declarations_stay_local() -> None:
    assert evaluate("function helper() { return 7; } helper()", {}) == 7
    assert evaluate("typeof helper", {}) == "undefined"


def test_implicit_globals_are_removed() -> None:
    assert evaluate("leaked = 5; this.viaThis = 6; leaked + viaThis", {}) == 11
    assert evaluate("typeof leaked + ',' + typeof viaThis", {}) == "undefined,undefined"


def test_overwriting_builtins_used_by_the_engine_does_not_break_it() -> None:
    def run() -> list[Any]:
        clobber = "JSON.parse = null; JSON.stringify = null; Object.keys = null; eval = null; 1"
        return [evaluate(clobber, {}), evaluate("$.a + $.b", INPUT), evaluate("JSON.parse === null", {})]

    # on a throw-away thread (and so context): built-in mutations persist, as documented
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(run).result(timeout=30) == [1, 3, True]


# --------------------------------------------------------------------------------------------
# Result conversion


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("1.0", 1),
        ("2.5", 2.5),
        ("0.1 + 0.2", 0.1 + 0.2),
        ("-7", -7),
        ("2**31", 2**31),
        ("2**53", 2**53),
        ("2**60", 2**60),  # exact, not the rounded "1152921504606847000"
        ("-(2**63)", -(2**63)),  # Long.MIN_VALUE fits a long
        ("2**63", float(2**63)),  # does not: a double
        ("1e20", 1e20),
        ("1e300", 1e300),
        ("12345678901234567890n", 1.2345678901234567e19),
        ("42n", 42),
        ("'text'", "text"),
        ("true", True),
        ("null", None),
        ("undefined", None),
        ("(function(){})", None),
        ("Symbol('s')", None),
        ("NaN", None),  # documented choice: JSON has no NaN/Infinity
        ("Infinity", None),
        ("[1, undefined, [2.0, {x: null}], 'y']", [1, None, [2, {"x": None}], "y"]),
        ("({a: undefined, f: function(){}, n: {m: [1.5]}})", {"a": None, "f": None, "n": {"m": [1.5]}}),
        ("new Date(Date.UTC(2020, 0, 2, 3, 4, 5))", "2020-01-02T03:04:05.000Z"),
        ("new Map([['k', 1], [2, 'two']])", {"k": 1, "2": "two"}),
        ("new Set([3, 1, 3])", [3, 1]),
    ],
)
def test_conversion(script: str, expected: Any) -> None:
    result = evaluate(script, {})
    assert result == expected
    assert type(result) is type(expected)


def test_lone_surrogates_become_replacement_characters() -> None:
    script = r"['\ud800x', 'a\\ud800', '\ud83d\ude00', '\udc00']"
    assert evaluate(script, {}) == ["\ufffdx", "a\\ud800", "\U0001f600", "\ufffd"]


def test_integral_results_are_ints() -> None:
    assert isinstance(evaluate("$.a / 1", INPUT), int)
    assert isinstance(evaluate("$.a / 2", INPUT), float)
    assert not math.isnan(evaluate("$.a / 2", INPUT))


# --------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("script", "message", "line"),
    [
        ("foo", "ReferenceError: foo is not defined", 1),
        ("$.a +", "SyntaxError: unexpected token in expression: ''", 1),
        ("x\n=\n;", "SyntaxError: unexpected token in expression: ';'", 3),
        ("throw new Error('boom')", "Error: boom", 1),
        ("null.x", "TypeError: cannot read property 'x' of null", 1),
        ("\n[1].map(function (v) { return v.x.y; })", "TypeError: cannot read property 'y' of undefined", 2),
        ("JSON.parse('{bad')", "SyntaxError: Expected property name or '}' in JSON at position 1 (line 1 column 2)", 1),
        ("\n\nfunction f() { return nope; }\nf()", "ReferenceError: nope is not defined", 3),
        ("throw 'plain string'", "plain string", None),
        ("throw {code: 7}", '{"code":7}', None),
        ("function r() { return r(); } r()", "RangeError: Maximum call stack size exceeded", 1),
    ],
)
def test_script_errors(script: str, message: str, line: int | None) -> None:
    with pytest.raises(ScriptError) as info:
        evaluate(script, INPUT)
    assert info.value.message == message
    assert str(info.value) == message
    assert info.value.line == line
    assert not isinstance(info.value, ScriptTimeout)
    assert evaluate("$.a", INPUT) == 1  # the context is fine afterwards


def test_circular_result_is_an_error() -> None:
    with pytest.raises(ScriptError, match="^TypeError: circular reference$"):
        evaluate("var o = {}; o.self = o; o", {})


def test_timeout_then_same_thread_works() -> None:
    start = time.monotonic()
    with pytest.raises(ScriptTimeout) as info:
        evaluate("while (true) {}", INPUT, timeout_ms=200)
    elapsed = time.monotonic() - start
    # the limit counts the process's CPU time (QuickJS clock()): a busy machine stretches the wall time,
    # other busy threads of this process shorten it
    assert 0.05 <= elapsed < 10.0
    assert info.value.message == "Script not evaluated within 200 ms, interrupted."
    assert isinstance(info.value, ScriptError)
    assert evaluate("$.a + $.b", INPUT) == 3
    # and again: repeated terminations do not wear the context out
    with pytest.raises(ScriptTimeout):
        evaluate("for (;;) {}", {}, timeout_ms=100)
    assert evaluate("[1, 2].length", {}) == 2


def test_timeout_message_in_seconds_like_upstream() -> None:
    with pytest.raises(ScriptTimeout, match=r"^Script not evaluated within 1 seconds, interrupted\.$"):
        evaluate("while (true) {}", {}, timeout_ms=1000)


def test_timeout_default_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(scripting.TIMEOUT_ENV_VAR, raising=False)
    assert scripting._resolve_timeout_ms(None) == DEFAULT_TIMEOUT_MS == 4000
    monkeypatch.setenv(scripting.TIMEOUT_ENV_VAR, "7")
    assert scripting._resolve_timeout_ms(None) == 7000
    assert scripting._resolve_timeout_ms(250) == 250  # explicit wins
    monkeypatch.setenv(scripting.TIMEOUT_ENV_VAR, "not-a-number")
    assert scripting._resolve_timeout_ms(None) == DEFAULT_TIMEOUT_MS
    with pytest.raises(ValueError):
        scripting._resolve_timeout_ms(0)
    monkeypatch.setenv(scripting.TIMEOUT_ENV_VAR, "0.2")
    with pytest.raises(ScriptTimeout, match="200 ms"):
        evaluate("while (true) {}", {})


def test_timeout_keeps_the_context() -> None:
    evaluate("1", {})
    engine = scripting._local.engine
    assert engine is not None
    ctx = engine.ctx
    with pytest.raises(ScriptTimeout):
        evaluate("leakedAtTimeout = 1; while (true) {}", {}, timeout_ms=50)
    assert engine.ctx is ctx  # QuickJS contexts survive an interrupt: no replacement needed
    # the interrupt skipped the prelude's `finally`: the next call still starts from clean globals
    assert evaluate("typeof leakedAtTimeout", {}) == "undefined"
    with pytest.raises(ScriptTimeout):  # an interrupt cannot be caught by the script
        evaluate("try { while (true) {} } catch (e) { 'caught' }", {}, timeout_ms=50)


def test_heap_limit_is_a_script_error_and_context_survives() -> None:
    evaluate("1", {})
    engine = scripting._local.engine
    assert engine is not None
    ctx = engine.ctx
    script = "var keep = []; while (true) { keep.push(new Array(1e6).fill(1.5)); } 0"
    with pytest.raises(ScriptError, match="heap limit") as info:
        evaluate(script, {}, timeout_ms=30_000)
    assert not isinstance(info.value, ScriptTimeout)
    assert info.value.message == (
        "InternalError: out of memory (the script exceeded the JavaScript heap limit of 256 MB)"
    )
    assert evaluate("$.a * 3", INPUT) == 3
    assert engine.ctx is ctx
    assert engine.ctx.memory()["memory_used_size"] < 16 * 2**20  # the script's arrays were freed


def test_broken_context_is_replaced() -> None:
    evaluate("1", {})
    engine = scripting._local.engine
    assert engine is not None

    class Dead:  # a context that died underneath us: every use fails
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError("context is gone")

        def __call__(self, *args: Any) -> Any:
            raise RuntimeError("context is gone")

    dead = Dead()
    engine.ctx = dead
    engine.call = dead
    with pytest.raises(ScriptError, match="engine failure"):
        evaluate("1", {})
    assert engine.ctx is not dead
    assert evaluate("$.b", INPUT) == 2


def test_deep_recursion_within_the_stack_limit() -> None:
    # QuickJS's default 1 MB C stack allows ~600 nested calls; the module raises it (glibc)
    script = "function depth(n) { return n === 0 ? 0 : 1 + depth(n - 1); } depth($.n)"
    assert evaluate(script, {"n": 2000}) == 2000
    with ThreadPoolExecutor(max_workers=1) as pool:  # worker threads as well
        assert pool.submit(evaluate, script, {"n": 2000}).result(timeout=30) == 2000
    with pytest.raises(ScriptError, match="^RangeError: Maximum call stack size exceeded$"):
        evaluate(script, {"n": 10**6})


# --------------------------------------------------------------------------------------------
# Promise jobs


def test_promise_jobs_run_after_the_script_and_do_not_change_its_result() -> None:
    script = """
        var box = {v: 1};
        Promise.resolve().then(function () { box.v = 2; Array.prototype.__cl_job_probe = $.a; });
        (async function () { await null; throw new Error('ignored, like an unhandled rejection'); })();
        queueMicrotask(function () { throw new Error('ignored too'); });
        box.v
    """

    def run() -> list[Any]:
        return [evaluate(script, INPUT), evaluate("[].__cl_job_probe", {})]

    with ThreadPoolExecutor(max_workers=1) as pool:  # the job mutates a built-in: keep it off this thread
        assert pool.submit(run).result(timeout=30) == [1, 1]


def test_endless_promise_jobs_time_out_and_are_dropped() -> None:
    script = "function again() { Promise.resolve().then(again); } again(); 'done'"
    with pytest.raises(ScriptTimeout, match="200 ms"):
        evaluate(script, {}, timeout_ms=200)
    assert evaluate("$.a + 1", INPUT) == 2
    with pytest.raises(ScriptTimeout):
        evaluate("Promise.resolve().then(function () { while (true) {} }); 1", {}, timeout_ms=100)
    assert evaluate("$.a + 2", INPUT) == 3
    assert evaluate("(async () => 5)()", {}) == {}  # a promise is an object without keys


# --------------------------------------------------------------------------------------------
# Threads and event loops


def test_two_threads_concurrently() -> None:
    barrier = threading.Barrier(2)

    def work(i: int) -> tuple[Any, int, int]:
        if i < 2:
            barrier.wait(timeout=30)  # both workers are inside at the same time
        result = evaluate(
            "var acc = 0; for (var k = 0; k < $.n; k++) acc += k; [$.id, acc]", {"id": i, "n": i}
        )
        engine = scripting._local.engine
        return result, threading.get_ident(), id(engine)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(work, range(300)))
    for i, (result, _, _) in enumerate(results):
        assert result == [i, i * (i - 1) // 2]
    threads = {thread for _, thread, _ in results}
    engines = {engine for _, _, engine in results}
    assert len(threads) == 2
    assert len(engines) == 2  # one context per thread


def test_timeout_in_one_thread_does_not_disturb_another() -> None:
    def spin() -> str:
        try:
            evaluate("while (true) {}", {}, timeout_ms=300)
        except ScriptTimeout:
            return "timeout"
        return "finished"

    def quick() -> list[Any]:
        return [evaluate("$.i + 1", {"i": i}) for i in range(50)]

    with ThreadPoolExecutor(max_workers=2) as pool:
        spinning = pool.submit(spin)
        fast = pool.submit(quick)
        assert fast.result(timeout=30) == list(range(1, 51))
        assert spinning.result(timeout=30) == "timeout"


def test_a_spinning_script_does_not_hold_the_gil() -> None:
    started = threading.Event()

    def spin() -> str:
        started.set()
        try:
            evaluate("while (true) {}", {}, timeout_ms=1500)
        except ScriptTimeout:
            return "timeout"
        return "finished"

    with ThreadPoolExecutor(max_workers=1) as pool:
        t0 = time.monotonic()
        spinning = pool.submit(spin)
        assert started.wait(timeout=30)
        gaps: list[float] = []
        last = time.monotonic()
        while not spinning.done():
            time.sleep(0.002)
            now = time.monotonic()
            gaps.append(now - last)
            last = now
        assert spinning.result() == "timeout"
        spun = time.monotonic() - t0
    assert len(gaps) > 20
    # the Python thread kept running while QuickJS spun: a held GIL would stop it for the whole
    # spin (the bound leaves room for a busy machine's scheduling gaps)
    assert max(gaps) < spun / 2, (max(gaps), spun)


def test_inside_a_running_event_loop() -> None:
    async def main() -> tuple[Any, str]:
        value = evaluate("$.a + 41", INPUT, timeout_ms=1000)
        try:
            evaluate("while (true) {}", {}, timeout_ms=100)
        except ScriptTimeout as exc:
            return value, exc.message
        return value, ""

    def in_fresh_thread() -> tuple[Any, str]:
        return asyncio.run(main())  # the context is created while a loop runs on this thread

    with ThreadPoolExecutor(max_workers=1) as pool:
        value, message = pool.submit(in_fresh_thread).result(timeout=30)
    assert value == 42
    assert "interrupted" in message


_EXIT_SCRIPT = """
import threading
from conductor_lab.engine import scripting
out = []
def work(i):
    out.append(scripting.evaluate("var s = 0; for (var k = 0; k < 1000; k++) s += k; s + $.i", {"i": i}))
threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
for t in threads: t.start()
for t in threads: t.join()
out.append(scripting.evaluate("2", {}))
assert sorted(out) == [2, 499500, 499501], out
# a daemon thread still inside a script when the interpreter exits
threading.Thread(target=scripting.evaluate, args=("while (true) {}", {}), daemon=True).start()
print("ok")
"""

_FORK_SCRIPT = """
import os, sys, threading
from concurrent.futures import ThreadPoolExecutor
from conductor_lab.engine import scripting
assert scripting.evaluate("$.a + 1", {"a": 1}) == 2
pool = ThreadPoolExecutor(max_workers=1)
assert pool.submit(scripting.evaluate, "$.a + 2", {"a": 1}).result() == 3  # an idle thread's context
inside = threading.Event()
def spin():
    inside.set()
    try:
        scripting.evaluate("var k = []; while (true) { k.push({x: 1}); if (k.length > 99) k = []; }", {},
                           timeout_ms=1000)
    except scripting.ScriptTimeout:
        pass
spinner = threading.Thread(target=spin)
spinner.start()
inside.wait()
codes = []
for _ in range(2):
    pid = os.fork()  # while another thread is (most likely) inside a script
    if pid == 0:
        ok = scripting.evaluate("$.a * 10", {"a": 4}) == 40
        with ThreadPoolExecutor(max_workers=1) as child_pool:
            ok = ok and child_pool.submit(scripting.evaluate, "[1, 2, 3].length", {}).result() == 3
        try:
            scripting.evaluate("while (true) {}", {}, timeout_ms=50)
        except scripting.ScriptTimeout:
            ok = ok and scripting.evaluate("'again'", {}) == "again"
        sys.exit(0 if ok else 3)  # a normal exit: finalisation frees the child's contexts
    codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
spinner.join()
pool.shutdown()
print(codes)
"""


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_interpreter_exits_cleanly_after_evaluating_on_several_threads() -> None:
    for _ in range(5):
        done = _run_python(_EXIT_SCRIPT)
        assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "ok", "")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_evaluates() -> None:
    done = _run_python(_FORK_SCRIPT)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "[0, 0]", "")


# --------------------------------------------------------------------------------------------
# eval_bool, LAMBDA, java_string


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("true", True),
        ("false", False),
        ("1", True),
        ("0.5", True),
        ("0", False),
        ("-1", False),
        ("'true'", False),  # a string is not a Boolean
        ("null", False),
        ("undefined", False),
        ("NaN", False),
        ("[1]", False),
        ("$.loop.iteration < 3", True),
        ("if ($.loop['iteration'] < 3) { true; } else { false; }", True),
    ],
)
def test_eval_bool(script: str, expected: bool) -> None:
    assert eval_bool(script, INPUT) is expected


def test_evaluate_function_body() -> None:
    assert evaluate_function_body("return $.a * 2;", INPUT) == 2
    body = "if ($.a == 1) { return {testvalue: true}; } else { return {testvalue: false}; }"
    assert evaluate_function_body(body, INPUT) == {"testvalue": True}
    assert evaluate_function_body("var x = 1;", INPUT) is None  # no return -> undefined
    assert evaluate("typeof scriptFun", {}) == "undefined"
    with pytest.raises(ScriptError, match="ReferenceError: nope is not defined"):
        evaluate_function_body("return nope;", {})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (1, "1"),
        (-3, "-3"),
        (1.5, "1.5"),
        (1.0, "1.0"),
        (1e20, "1.0E20"),
        ("text", "text"),
        ({"a": 1, "b": "x"}, "{a=1, b=x}"),
        ([1, 2], "[1, 2]"),
        ({"l": [None, True], "m": {}}, "{l=[null, true], m={}}"),
    ],
)
def test_java_string(value: Any, expected: str) -> None:
    assert java_string(value) == expected


def test_java_string_of_evaluated_values() -> None:
    # SWITCH case selection: String.valueOf(evaluate(...))
    assert java_string(evaluate("$.a == 1 ? 'one' : 'other'", INPUT)) == "one"
    assert java_string(evaluate("2.0", {})) == "2"  # an integral number is an Integer upstream
    assert java_string(evaluate("$.missing", INPUT)) == "null"


# --------------------------------------------------------------------------------------------
# jq


def test_jq_single_value() -> None:
    assert jq_transform(".a", INPUT) == [1]
    assert jq_transform(".missing", INPUT) == [None]


def test_jq_multiple_outputs() -> None:
    data = {"items": [{"x": 1}, {"x": 2.5}, {"x": "s"}]}
    assert jq_transform(".items[] | .x", data) == [1, 2.5, "s"]
    assert jq_transform(".[] | .x", data["items"]) == [1, 2.5, "s"]
    assert jq_transform("empty", data) == []


def test_jq_object_construction_and_ints() -> None:
    result = jq_transform("{k: .a, total: (.a + .b), half: (.b / 4), list: .nested.list}", INPUT)
    assert result == [{"k": 1, "total": 3, "half": 0.5, "list": [1, 2, {"k": "v"}]}]
    assert type(result[0]["total"]) is int


def test_jq_non_json_input() -> None:
    assert jq_transform(".d", {"d": datetime.date(2024, 1, 2)}) == ["2024-01-02"]


def test_jq_compile_error() -> None:
    with pytest.raises(ScriptError) as info:
        jq_transform("{", INPUT)
    assert "syntax error" in info.value.message
    assert "compile error" in info.value.message
    with pytest.raises(ScriptError, match="nosuchfn/0 is not defined"):
        jq_transform(".a | nosuchfn", INPUT)


def test_jq_runtime_errors() -> None:
    with pytest.raises(ScriptError) as info:
        jq_transform('.a | error("x")', INPUT)
    assert info.value.message == "x"
    with pytest.raises(ScriptError, match=r"Cannot index number with \"b\"|Cannot index number with string"):
        jq_transform(".a.b", INPUT)


def test_jq_programs_are_cached() -> None:
    query = ".cached_probe | length"
    first = scripting._compile_jq(query)
    assert scripting._compile_jq(query) is first
    hits = scripting._compile_jq.cache_info().hits
    assert jq_transform(query, {"cached_probe": [1, 2, 3]}) == [3]
    assert jq_transform(query, {"cached_probe": []}) == [0]
    assert scripting._compile_jq.cache_info().hits == hits + 2
    assert scripting._compile_jq.cache_info().maxsize == 256


def test_jq_failed_compiles_are_not_cached() -> None:
    misses = scripting._compile_jq.cache_info().misses
    for _ in range(2):
        with pytest.raises(ScriptError):
            jq_transform("][", {})
    assert scripting._compile_jq.cache_info().misses == misses + 2
