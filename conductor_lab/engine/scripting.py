"""Script evaluation for the engine: real JavaScript (V8 through ``mini-racer``) and real jq.

Upstream: ``core/.../core/events/ScriptEvaluator.java`` (GraalJS), the ``javascript`` / ``graaljs``
evaluators, ``tasks/Inline.java``, ``tasks/Lambda.java``, ``DoWhile.evaluateCondition``, the
DECISION/SWITCH case expressions and ``json-jq-task/.../JsonJqTransform.java``.

JavaScript
----------
conductor-oss evaluates a script with ``$`` bound to a deep copy of the task input, in a *fresh*
GraalJS context (the context pool is off by default), returns the script's completion value
(``ScriptEngine.eval`` semantics: ``$.a + $.b`` and ``if (x) { true; } else { false; }`` both work)
and kills it after ``CONDUCTOR_SCRIPT_MAX_EXECUTION_SECONDS`` (4 s).

Here a V8 isolate costs a few milliseconds to create but little to call, so:

* One ``MiniRacer`` per OS thread (``threading.local``), created on first use and reused. The engine
  evaluates on its event-loop thread and on a few worker threads; isolates never cross threads.
  The isolate is built on a short-lived helper thread: mini-racer >= 0.14 binds itself to the
  asyncio loop running on the creating thread, and its ``timeout_sec`` is refused on that loop.
* Isolation without a fresh context: a prelude installs one non-writable global function,
  ``__cl_eval(src, json)``, which parses the bindings with ``JSON.parse`` (so ``$`` is always a
  fresh deep copy and mutating it cannot reach the caller) and runs ``src`` through a *direct*
  ``eval`` inside its own function scope. ``var``/``let``/``const``/function declarations of the
  script are therefore local to that call, so the same script can run twice (the very problem
  upstream's pooled contexts have with top-level ``const``). Sloppy-mode implicit globals
  (``x = 1`` without a declaration) and ``this.x = 1`` become enumerable own properties of the
  global object; every enumerable global not present after the prelude is deleted before and after
  each evaluation. Residual, documented limitation: a script that mutates built-ins
  (``Array.prototype.x = ...``) changes them for later scripts on that thread. The prelude holds
  its own references to ``eval`` and the ``JSON``/``Object`` functions it uses, so overriding those
  globals cannot break it.
* Conversion is one step each way: bindings are serialised with ``orjson`` (``default=str``;
  non-string keys allowed; ints beyond 64 bits become floats, as JS would read them) and passed as a
  JS string literal; the result is ``JSON.stringify``-ed inside V8 with a replacer and parsed with
  ``orjson``. JS exceptions are caught inside V8 as well, so an error costs no extra round trip.
* Time limit: mini-racer's ``timeout_sec`` terminates the running script (V8
  ``TerminateExecution``) -> :class:`ScriptTimeout`. Heap limit: a hard limit of
  :data:`MAX_HEAP_BYTES` per isolate -> :class:`ScriptError`. After either (or any other engine
  failure) the isolate is probed; if it no longer answers, it is replaced transparently.
* Lifecycle: isolates are closed explicitly at interpreter exit (freeing one from
  ``MiniRacer.__del__`` during finalisation hangs now and then with mini-racer 0.14.1); a forked
  child never touches its parent's isolates and creates its own.
* Cost: one evaluation is one ``MiniRacer.eval`` round trip (~0.2-0.45 ms on 2 vCPUs, almost all of
  it mini-racer's thread hand-offs; the JS side is ~4 us). ``bench/scripting.py`` measures it.

Result conversion (what GraalJS's ``Value`` -> Java mapping yields, in Python terms):

=============================================  =============================================
JS value                                       Python value
=============================================  =============================================
object / ``Map``                               ``dict`` (``Map`` keys become strings)
array / ``Set``                                ``list`` (upstream's ``getObject`` has no ``Set`` case)
number, integral and within Java ``long``      ``int`` (``1.0`` -> ``1``, ``2**60`` exact)
other finite number (incl. >= 2**63)           ``float``
``NaN`` / ``Infinity`` / ``-Infinity``         ``None`` (JSON has no such values; chosen so
                                               results always stay JSON-able)
``BigInt``                                     ``int`` within ``long``, else ``float``
string / boolean                               ``str`` / ``bool``
``null`` / ``undefined`` / function / symbol   ``None`` (also as object members: key kept)
``Date``                                       its ``toJSON()`` string (ISO-8601, UTC)
=============================================  =============================================

Error messages are the JS engine's ``String(error)``, e.g. ``ReferenceError: foo is not defined``,
``Error: boom``, ``SyntaxError: Unexpected end of input`` (V8's wording, which differs from Graal's
for syntax errors); a thrown non-Error object is rendered as JSON, other values with ``String``.
A failure to stay inside the heap limit reads ``RangeError: script exceeded the JavaScript heap
limit of 256 MB``; a timeout reads like upstream's ``Script not evaluated within 4 seconds,
interrupted.`` (``... within 200 ms ...`` for limits that are not whole seconds).
:attr:`ScriptError.line` carries the line of the script where a runtime error was thrown, if known.

jq
--
:func:`jq_transform` runs a program with the ``jq`` package (libjq) and returns every emitted
value (JSON_JQ_TRANSFORM: ``result`` = first, ``resultList`` = all). Compiled programs are kept in
an LRU cache of 256 entries keyed by the query text; compile and runtime errors raise
:class:`ScriptError` with jq's message. jq numbers are IEEE doubles; integral results stay ``int``.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import logging
import os
import threading
import weakref
from typing import Any

import jq
import orjson
from py_mini_racer import JSEvalException, JSOOMException, JSTimeoutException, MiniRacer

from conductor_lab.engine.params import to_java_string

__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "MAX_HEAP_BYTES",
    "ScriptError",
    "ScriptTimeout",
    "eval_bool",
    "evaluate",
    "evaluate_function_body",
    "java_string",
    "jq_transform",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_MS = 4000
"""conductor-oss ``CONDUCTOR_SCRIPT_MAX_EXECUTION_SECONDS`` default (4 s)."""

TIMEOUT_ENV_VAR = "CONDUCTOR_SCRIPT_MAX_EXECUTION_SECONDS"

MAX_HEAP_BYTES = 256 * 1024 * 1024
"""Hard V8 heap limit per isolate; a script that exceeds it fails with :class:`ScriptError`."""

JQ_CACHE_SIZE = 256

# A rejected probe after a failure means the isolate is unusable and gets replaced.
_PROBE_TIMEOUT_SEC = 2.0


class ScriptError(Exception):
    """A script failed: JS exception, syntax error, memory limit, or a jq compile/runtime error.

    ``str(error)`` / :attr:`message` is the engine's message (``ReferenceError: foo is not defined``);
    :attr:`line` is the 1-based script line of a JS runtime error when V8 reports it, else ``None``.
    """

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class ScriptTimeout(ScriptError):
    """The script did not finish within its time limit and was terminated."""


# --------------------------------------------------------------------------------------------
# JavaScript

# Installed once per isolate. Must stay sloppy-mode code: a direct eval inherits the strictness of
# its caller, and user scripts are sloppy (Nashorn/GraalJS default). Names captured in the closure
# are immune to scripts that overwrite the corresponding globals.
_PRELUDE = r"""
(function (g) {
  var parse = JSON.parse, stringify = JSON.stringify, rawJSON = JSON.rawJSON;
  var keys = Object.keys, fromEntries = Object.fromEntries, arrayFrom = Array.from;
  var defineProperty = Object.defineProperty, StringCtor = String, BigIntCtor = BigInt;
  var evalIntrinsic = eval;  // a call through a binding named `eval` holding %eval% is a direct eval
  var isFiniteNum = Number.isFinite, NumberCtor = Number, MapCtor = Map, SetCtor = Set, ErrorCtor = Error;
  var baseline = new SetCtor(keys(g));
  var LONG_MIN = -9223372036854775808, LONG_END = 9223372036854775808;  // [-2^63, 2^63)
  var SAFE = 9007199254740991;
  var BIG_MIN = -(2n ** 63n), BIG_END = 2n ** 63n;
  var LINE = /\(eval at [^\n]*?, <anonymous>:(\d+):\d+\)/;

  function cleanGlobals() {
    var ks = keys(g);
    for (var i = 0; i < ks.length; i++) {
      if (!baseline.has(ks[i])) { try { delete g[ks[i]]; } catch (e) {} }
    }
  }

  function replacer(k, v) {
    switch (typeof v) {
      case 'undefined': case 'function': case 'symbol':
        return null;
      case 'number':
        // Integral doubles beyond 2^53 would print rounded ("1152921504606847000"): print exactly
        // inside Java long range (-> int), in exponent form outside it (-> float).
        if ((v > SAFE || v < -SAFE) && isFiniteNum(v)) {
          return (v >= LONG_MIN && v < LONG_END) ? rawJSON(BigIntCtor(v).toString())
                                                 : rawJSON(v.toExponential());
        }
        return v;
      case 'bigint':
        return (v >= BIG_MIN && v < BIG_END) ? rawJSON(v.toString())
                                             : rawJSON(NumberCtor(v).toExponential());
      case 'object':
        if (v instanceof MapCtor) return fromEntries(v);
        if (v instanceof SetCtor) return arrayFrom(v);
        return v;
    }
    return v;
  }

  function describe(e) {
    try {
      if (e !== null && typeof e === 'object' && !(e instanceof ErrorCtor)) {
        var json = stringify(e);
        if (typeof json === 'string') return json;
      }
      return StringCtor(e);
    } catch (x) {
      return 'Error: uncaught exception';
    }
  }

  function errorLine(e) {
    try {
      if (e instanceof ErrorCtor && typeof e.stack === 'string') {
        var m = LINE.exec(e.stack);
        if (m) return +m[1];
      }
    } catch (x) {}
    return null;
  }

  function fail(e) {
    return '\u0000' + stringify([describe(e), errorLine(e)]);
  }

  defineProperty(g, '__cl_eval', {
    enumerable: false, configurable: false, writable: false,
    value: function __cl_eval(__cl_src, __cl_json) {
      var eval = evalIntrinsic;  // immune to `eval = ...` in an earlier script
      cleanGlobals();
      try {
        var $ = parse(__cl_json);
        var __cl_result = eval(__cl_src);
        return stringify(__cl_result, replacer);
      } catch (e) {
        return fail(e);
      } finally {
        cleanGlobals();
      }
    }
  });
})(globalThis);
"""


def _create_racer() -> MiniRacer:
    """A new isolate with the prelude and the heap limit, built on a helper thread (see module doc)."""
    box: list[Any] = []

    def build() -> None:
        try:
            racer = MiniRacer()
        except BaseException as exc:  # handed to the calling thread below
            box.append(exc)
            return
        try:
            racer.set_hard_memory_limit(MAX_HEAP_BYTES)
            racer.eval(_PRELUDE)
        except BaseException as exc:
            racer.close()
            box.append(exc)
        else:
            box.append(racer)

    thread = threading.Thread(target=build, name="conductor-lab-v8-init", daemon=True)
    thread.start()
    thread.join()
    result = box[0]
    if isinstance(result, BaseException):
        raise ScriptError(f"Cannot start the JavaScript engine: {result}") from result
    assert isinstance(result, MiniRacer)
    return result


class _Isolate:
    """The calling thread's V8 isolate; replaced when it stops answering."""

    __slots__ = ("__weakref__", "pid", "racer")

    def __init__(self) -> None:
        self.racer = _create_racer()
        self.pid = os.getpid()
        _live_isolates.add(self)

    def close(self) -> None:
        try:
            self.racer.close()
        except Exception:  # noqa: BLE001 - best effort
            log.debug("closing a JavaScript isolate failed", exc_info=True)

    def run(self, code: str, timeout_ms: int) -> str:
        try:
            out = self.racer.eval(code, timeout_sec=timeout_ms / 1000.0)
        except JSTimeoutException:
            self._recover()
            raise ScriptTimeout(_timeout_message(timeout_ms)) from None
        except JSOOMException:
            self._recover()
            raise ScriptError(
                f"RangeError: script exceeded the JavaScript heap limit of {MAX_HEAP_BYTES // 2**20} MB"
            ) from None
        except JSEvalException as exc:
            self._recover()
            raise ScriptError(_engine_message(str(exc))) from None
        except Exception as exc:  # the isolate itself failed (closed, torn down, ...)
            self._recover()
            raise ScriptError(f"JavaScript engine failure: {exc!r}") from exc
        if not isinstance(out, str):  # the prelude always returns a string
            raise ScriptError(f"Unexpected result from the JavaScript engine: {type(out).__name__}")
        return out

    def _recover(self) -> None:
        """Keep the isolate if it still evaluates; otherwise close it and start a new one."""
        try:
            if self.racer.eval("1", timeout_sec=_PROBE_TIMEOUT_SEC) == 1:
                return
        except Exception:  # noqa: BLE001 - any failure means "unusable"
            pass
        log.warning("JavaScript isolate unusable after a failure; replacing it")
        self.close()
        self.racer = _create_racer()


class _ThreadIsolate(threading.local):
    isolate: _Isolate | None = None


_local = _ThreadIsolate()


def _isolate() -> _Isolate:
    isolate = _local.isolate
    if isolate is None:
        isolate = _local.isolate = _Isolate()
    return isolate


# Every isolate of this process, closed explicitly at exit: freeing one from ``MiniRacer.__del__``
# during interpreter finalisation can block forever (mini-racer 0.14.1 waits for a V8-thread
# callback that can no longer take the GIL; about one exit in five hung without this).
_live_isolates: weakref.WeakSet[_Isolate] = weakref.WeakSet()


@atexit.register
def _close_isolates_at_exit() -> None:
    pid = os.getpid()
    for isolate in list(_live_isolates):
        if isolate.pid == pid:
            isolate.close()


def _forget_isolate_after_fork() -> None:
    """V8's threads do not survive fork(): the child builds its own isolates and must never free the
    parent's (freeing blocks forever), so each inherited ``MiniRacer`` gets one leaked reference."""
    for isolate in list(_live_isolates):
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(isolate.racer))
    _live_isolates.clear()
    _local.isolate = None


os.register_at_fork(after_in_child=_forget_isolate_after_fork)


def _engine_message(raw: str) -> str:
    """mini-racer reports uncaught errors as ``<file>:<line>: <message>\\n<source>\\n^...``: keep the message."""
    first = raw.split("\n", 1)[0]
    head, sep, rest = first.partition(": ")
    if sep and ":" in head:
        return rest
    return first or "JavaScript error"


def _timeout_message(timeout_ms: int) -> str:
    if timeout_ms % 1000 == 0:
        return f"Script not evaluated within {timeout_ms // 1000} seconds, interrupted."
    return f"Script not evaluated within {timeout_ms} ms, interrupted."


def _resolve_timeout_ms(timeout_ms: int | None) -> int:
    if timeout_ms is not None:
        if timeout_ms <= 0:
            raise ValueError(f"timeout_ms must be positive, got {timeout_ms}")
        return int(timeout_ms)
    raw = os.environ.get(TIMEOUT_ENV_VAR)
    if raw:
        try:
            seconds = float(raw)
        except ValueError:
            log.warning("ignoring %s=%r: not a number", TIMEOUT_ENV_VAR, raw)
        else:
            if seconds > 0:
                return max(1, int(seconds * 1000))
            log.warning("ignoring %s=%r: not positive", TIMEOUT_ENV_VAR, raw)
    return DEFAULT_TIMEOUT_MS


def _to_json(value: Any) -> str:
    """Compact JSON for ``value`` (``default=str``, non-string keys, NaN/Infinity -> null)."""
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except (orjson.JSONEncodeError, TypeError):
        pass  # an int beyond 64 bits (orjson refuses those) or a reference cycle
    try:
        return orjson.dumps(_plain(value, 0), default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except (orjson.JSONEncodeError, TypeError, RecursionError) as exc:
        raise ScriptError(f"Cannot serialise the script input as JSON: {exc}") from None


def _plain(value: Any, depth: int) -> Any:
    """Slow path of :func:`_to_json`: ints beyond 64 bits become floats (what JS makes of them)."""
    if depth > 256:
        raise RecursionError("input nested too deeply (or circular)")
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else float(value)
    if isinstance(value, dict):
        return {k: _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    return value


def evaluate(expression: str, bindings: Any, *, timeout_ms: int | None = None) -> Any:
    """Evaluate JavaScript ``expression`` with ``$`` bound to a deep copy of ``bindings``.

    ``expression`` may be an expression, statements (the completion value is the result) or a
    function-expression call, as with ``ScriptEngine.eval``. The result is converted to plain JSON
    values (see the module docstring). ``timeout_ms`` defaults to
    ``CONDUCTOR_SCRIPT_MAX_EXECUTION_SECONDS`` (env, seconds) or :data:`DEFAULT_TIMEOUT_MS`.

    Raises :class:`ScriptError` for JS errors and :class:`ScriptTimeout` when the limit runs out.
    """
    if not isinstance(expression, str):
        raise TypeError(f"expression must be a string, not {type(expression).__name__}")
    limit = _resolve_timeout_ms(timeout_ms)
    code = b"".join(
        (b"__cl_eval(", orjson.dumps(expression), b",", orjson.dumps(_to_json(bindings)), b")")
    ).decode()
    out = _isolate().run(code, limit)
    if out.startswith("\x00"):
        message, line = orjson.loads(out[1:])
        raise ScriptError(message, line=line)
    return orjson.loads(out)


def evaluate_function_body(body: str, bindings: Any, *, timeout_ms: int | None = None) -> Any:
    """LAMBDA semantics: run ``function scriptFun(){<body>} scriptFun();`` with ``$`` bound."""
    if not isinstance(body, str):
        raise TypeError(f"body must be a string, not {type(body).__name__}")
    return evaluate("function scriptFun(){" + body + "} scriptFun();", bindings, timeout_ms=timeout_ms)


def eval_bool(expression: str, bindings: Any, *, timeout_ms: int | None = None) -> bool:
    """``ScriptEvaluator.evalBool``: true for Boolean ``true`` or a number > 0, false otherwise."""
    result = evaluate(expression, bindings, timeout_ms=timeout_ms)
    if isinstance(result, bool):
        return result
    if isinstance(result, (int, float)):
        return result > 0
    return False


def java_string(value: Any) -> str:
    """``String.valueOf(value)`` in Java (SWITCH/DECISION case selection): ``None`` -> ``"null"``,
    ``True`` -> ``"true"``, ``1`` -> ``"1"``, ``1.5`` -> ``"1.5"``, maps ``{a=1, b=x}``, lists
    ``[1, 2]`` (map entries in insertion order; Java's ``HashMap`` order may differ)."""
    return to_java_string(value)


# --------------------------------------------------------------------------------------------
# jq


@functools.lru_cache(maxsize=JQ_CACHE_SIZE)
def _compile_jq(query: str) -> Any:
    """Compiled jq program for ``query`` (errors are not cached: lru_cache skips raised calls)."""
    try:
        return jq.compile(query)
    except ValueError as exc:
        raise ScriptError(str(exc)) from None


def jq_transform(query: str, data: Any) -> list[Any]:
    """Run jq program ``query`` on ``data`` and return every value it emits (possibly none).

    Raises :class:`ScriptError` with jq's message for compile and runtime errors.
    """
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, not {type(query).__name__}")
    program = _compile_jq(query)
    text = _to_json(data)
    try:
        results: list[Any] = program.input_text(text).all()
    except ValueError as exc:
        raise ScriptError(str(exc)) from None
    return results
