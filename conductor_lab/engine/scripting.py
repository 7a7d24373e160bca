"""Script evaluation for the engine: real JavaScript (QuickJS through ``quickjs-ng``) and real jq.

Upstream: ``core/.../core/events/ScriptEvaluator.java`` (GraalJS), the ``javascript`` / ``graaljs``
evaluators, ``tasks/Inline.java``, ``tasks/Lambda.java``, ``DoWhile.evaluateCondition``, the
DECISION/SWITCH case expressions and ``json-jq-task/.../JsonJqTransform.java``.

JavaScript
----------
conductor-oss evaluates a script with ``$`` bound to a deep copy of the task input, in a *fresh*
GraalJS context (the context pool is off by default), returns the script's completion value
(``ScriptEngine.eval`` semantics: ``$.a + $.b`` and ``if (x) { true; } else { false; }`` both work)
and kills it after ``CONDUCTOR_SCRIPT_MAX_EXECUTION_SECONDS`` (4 s).

Here the engine is QuickJS (the maintained ``quickjs-ng`` fork, ES2023+): it runs in the calling
thread (no thread hand-offs: ``$.a + $.b`` costs ~0.01-0.02 ms end to end against ~0.3-0.4 ms with
V8 through mini-racer, see ``bench/scripting.py``) and releases the GIL while JavaScript runs, so a
spinning script on a worker thread does not stall the event loop.

* One QuickJS context (with its own runtime) per OS thread (``threading.local``), created on first
  use (~0.3 ms) and reused. The engine evaluates on its event-loop thread and on a few worker
  threads; a context is only ever used by the thread that created it (QuickJS runtimes are not
  thread-safe and check stack depth against the creating thread's stack).
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
  globals cannot break it. Python calls the function object directly (no source text to compile
  besides the script itself).
* Conversion is one step each way: bindings are serialised with ``orjson`` (``default=str``;
  non-string keys allowed; ints beyond 64 bits become floats, as JS would read them) and passed as a
  string argument; the result is ``JSON.stringify``-ed inside QuickJS with a replacer and parsed
  with ``orjson``. JS exceptions are caught inside QuickJS as well.
* Promise jobs a script queues (``then``, ``await``, ``queueMicrotask``) run right after it, as V8
  ran its microtasks after each evaluation; they cannot change the result (already computed), their
  errors are ignored, and they count against the same time limit.
* Time limit: QuickJS's interrupt handler stops the script (uncatchable ``InternalError:
  interrupted``) -> :class:`ScriptTimeout`. Unlike upstream's wall-clock limit, quickjs-ng measures
  *process CPU time* (C ``clock()``) since the call began: a script is stopped at the latest after
  the limit in wall-clock time while it has a CPU to itself, *earlier* when other threads of the
  process are busy at the same time (two scripts spinning on two threads are both stopped after
  ~half the limit), and later in wall-clock time only if the whole process is starved of CPU.
* Heap limit: :data:`MAX_HEAP_BYTES` per context (QuickJS runtime ``malloc`` limit) -> a
  :class:`ScriptError`. Stack: QuickJS allows 1 MB of C stack by default (~600 nested JS calls);
  on glibc it is raised to half the thread stack size, at most 4 MB (~2,400 nested calls; V8 allowed
  ~12,000), and deeper recursion fails with ``RangeError: Maximum call stack size exceeded``.
  After a timeout, an out-of-memory error or any other engine failure the context is probed; it
  stays in use if it still evaluates (QuickJS contexts survive both interrupts and OOM), otherwise
  it is replaced transparently.
* Lifecycle: nothing to do. Contexts hold no threads, are freed with their thread (or at
  interpreter exit), and a forked child keeps evaluating with the forking thread's context.
* Strings: JSON.stringify escapes lone UTF-16 surrogates, which become U+FFFD in the result (as
  ``String.prototype.toWellFormed`` would make them).

Result conversion (what GraalJS's ``Value`` -> Java mapping yields, in Python terms; identical to
the V8 version this module had before):

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
``Promise``                                    ``{}`` (an object without own enumerable keys)
=============================================  =============================================

Error messages are QuickJS's ``String(error)``, e.g. ``ReferenceError: foo is not defined``,
``Error: boom``, ``TypeError: cannot read property 'x' of null`` (V8: ``Cannot read properties of
null (reading 'x')``), ``SyntaxError: unexpected token in expression: ''`` (V8: ``Unexpected end of
input``), ``RangeError: Maximum call stack size exceeded``; a thrown non-Error object is rendered as
JSON, other values with ``String``. Running out of the heap reads ``InternalError: out of memory
(the script exceeded the JavaScript heap limit of 256 MB)``; a timeout reads like upstream's
``Script not evaluated within 4 seconds, interrupted.`` (``... within 200 ms ...`` for limits that
are not whole seconds). :attr:`ScriptError.line` carries the 1-based line of the script where an
error was thrown (runtime errors) or detected (syntax errors), if known.

Other differences from V8 scripts may notice: no ``Intl`` (``toLocaleString()`` gives plain
``1234.5`` / ``01/02/2020, 03:04:05 AM``, ``localeCompare`` compares code units), no ``console`` /
``setTimeout`` (mini-racer's additions), ``Date.prototype.toString()`` without the time-zone name.

jq
--
:func:`jq_transform` runs a program with the ``jq`` package (libjq) and returns every emitted
value (JSON_JQ_TRANSFORM: ``result`` = first, ``resultList`` = all). Compiled programs are kept in
an LRU cache of 256 entries keyed by the query text; compile and runtime errors raise
:class:`ScriptError` with jq's message. jq numbers are IEEE doubles; integral results stay ``int``.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
from typing import Any

import jq
import orjson

try:  # the extension module itself: importing ``quickjs`` also starts an idle thread pool we do not use
    import _quickjs as _qjs
except ImportError:  # pragma: no cover - a different packaging of quickjs-ng
    import quickjs as _qjs

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
"""Memory limit per QuickJS context; a script that exceeds it fails with :class:`ScriptError`."""

JQ_CACHE_SIZE = 256

# Time limit of the health probe after a failure (a failing probe means "replace the context").
_PROBE_TIMEOUT_SEC = 2.0

_LONE_SURROGATE = re.compile(r"(?<!\\)((?:\\\\)*)\\u[dD][89a-fA-F][0-9a-fA-F]{2}")

_INTERRUPTED = "InternalError: interrupted"
_OUT_OF_MEMORY = "InternalError: out of memory"
_OOM_MESSAGE = (
    f"{_OUT_OF_MEMORY} (the script exceeded the JavaScript heap limit of {MAX_HEAP_BYTES // 2**20} MB)"
)


class ScriptError(Exception):
    """A script failed: JS exception, syntax error, memory limit, or a jq compile/runtime error.

    ``str(error)`` / :attr:`message` is the engine's message (``ReferenceError: foo is not defined``);
    :attr:`line` is the 1-based script line of a JS error when QuickJS reports it, else ``None``.
    """

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class ScriptTimeout(ScriptError):
    """The script did not finish within its time limit and was terminated."""


# --------------------------------------------------------------------------------------------
# JavaScript

# Installed once per context. Must stay sloppy-mode code: a direct eval inherits the strictness of
# its caller, and user scripts are sloppy (Nashorn/GraalJS default). Names captured in the closure
# are immune to scripts that overwrite the corresponding globals. QuickJS names every frame's file
# ``<input>``; the script's own frames are the ones above ``__cl_eval`` in ``error.stack``.
_PRELUDE = r"""
(function (g) {
  var parse = JSON.parse, stringify = JSON.stringify, rawJSON = JSON.rawJSON;
  if (typeof rawJSON !== 'function') throw new Error('JSON.rawJSON is missing: quickjs-ng >= 0.17 is required');
  var keys = Object.keys, fromEntries = Object.fromEntries, arrayFrom = Array.from;
  var defineProperty = Object.defineProperty, StringCtor = String, BigIntCtor = BigInt;
  var apply = Reflect.apply, exec = RegExp.prototype.exec, indexOf = String.prototype.indexOf;
  var slice = String.prototype.slice;
  var evalIntrinsic = eval;  // a call through a binding named `eval` holding %eval% is a direct eval
  var isFiniteNum = Number.isFinite, NumberCtor = Number, MapCtor = Map, SetCtor = Set, ErrorCtor = Error;
  var baseline = new SetCtor(keys(g));
  var LONG_MIN = -9223372036854775808, LONG_END = 9223372036854775808;  // [-2^63, 2^63)
  var SAFE = 9007199254740991;
  var BIG_MIN = -(2n ** 63n), BIG_END = 2n ** 63n;
  var FRAME = /<input>:(\d+):\d+/, OWN_FRAME = '\n    at __cl_eval (';

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
        var stack = e.stack, end = apply(indexOf, stack, [OWN_FRAME]);
        var m = apply(exec, FRAME, [end < 0 ? stack : apply(slice, stack, [0, end])]);
        if (m) return +m[1];
      }
    } catch (x) {}
    return null;
  }

  function fail(e) {
    return '\u0001' + stringify([describe(e), errorLine(e)]);
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
        cleanGlobals();  // skipped by an interrupt (uncatchable): the next call cleans up first
      }
    }
  });
})(globalThis);
"""


def _js_stack_bytes() -> int | None:
    """C stack QuickJS may use: half the thread stack, 1-4 MB; None (QuickJS's 1 MB) off glibc,
    where thread stacks can be far smaller than the main thread's limit."""
    try:
        glibc = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        glibc = None
    if not glibc:
        return None
    import resource

    size = threading.stack_size()
    if not size:  # glibc's default thread stack is RLIMIT_STACK (2 MB if unlimited)
        soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
        size = soft if 0 < soft != resource.RLIM_INFINITY else 2 * 2**20
    return max(2**20, min(4 * 2**20, size // 2))


_JS_STACK_BYTES = _js_stack_bytes()


def _first_line(message: str) -> str:
    """QuickJS appends the stack to an uncaught exception's message: keep the first line."""
    return message.split("\n", 1)[0] or "JavaScript error"


class _Engine:
    """The calling thread's QuickJS context with the prelude; replaced when it stops answering."""

    __slots__ = ("call", "ctx", "limit_ms")

    def __init__(self) -> None:
        try:
            ctx = _qjs.Context()
            ctx.set_memory_limit(MAX_HEAP_BYTES)
            if _JS_STACK_BYTES is not None:
                ctx.set_max_stack_size(_JS_STACK_BYTES)
            ctx.eval(_PRELUDE)
            call = ctx.get("__cl_eval")
        except Exception as exc:
            raise ScriptError(f"Cannot start the JavaScript engine: {_first_line(str(exc))}") from exc
        self.ctx = ctx
        self.call = call
        self.limit_ms = 0

    def _set_limit(self, limit_ms: int) -> None:
        if limit_ms != self.limit_ms:
            self.ctx.set_time_limit(limit_ms / 1000.0)
            self.limit_ms = limit_ms

    def run(self, src: str, bindings_json: str, timeout_ms: int) -> str:
        started = time.monotonic()
        try:
            self._set_limit(timeout_ms)
            out = self.call(src, bindings_json)
        except _qjs.JSException as exc:  # uncatchable (interrupt) or a failure of the prelude itself
            raise self._failure(_first_line(str(exc)), timeout_ms) from None
        except Exception as exc:  # the context itself failed
            self.recover()
            raise ScriptError(f"JavaScript engine failure: {exc!r}") from exc
        self._run_jobs(started + timeout_ms / 1000.0, timeout_ms)
        if not isinstance(out, str):  # the prelude always returns a string
            raise ScriptError(f"Unexpected result from the JavaScript engine: {type(out).__name__}")
        return out

    def _failure(self, message: str, timeout_ms: int) -> ScriptError:
        self.recover()
        if message.startswith(_INTERRUPTED):
            return ScriptTimeout(_timeout_message(timeout_ms))
        if message.startswith(_OUT_OF_MEMORY):
            return ScriptError(_OOM_MESSAGE)
        return ScriptError(message)

    def _run_jobs(self, deadline: float, timeout_ms: int) -> None:
        """Run the promise jobs the script queued (usually none), until ``deadline`` at the latest."""
        while True:
            try:
                if not self.ctx.execute_pending_job():
                    return
            except _qjs.JSException as exc:
                message = _first_line(str(exc))
                if message.startswith((_INTERRUPTED, _OUT_OF_MEMORY)):
                    raise self._failure(message, timeout_ms) from None
                log.debug("a promise job of a script failed: %s", message)  # unhandled, as in V8
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:  # e.g. an endless chain of jobs: drop them with the context
                self._replace()
                raise ScriptTimeout(_timeout_message(timeout_ms))
            self._set_limit(remaining_ms)

    def recover(self) -> None:
        """Keep the context if it still evaluates (collecting garbage first); else start a new one."""
        try:
            self.ctx.gc()
            self._set_limit(int(_PROBE_TIMEOUT_SEC * 1000))
            if self.ctx.eval("1") == 1:
                return
        except Exception:  # noqa: BLE001 - any failure means "unusable"
            pass
        log.warning("JavaScript context unusable after a failure; replacing it")
        self._replace()

    def _replace(self) -> None:
        fresh = _Engine()
        self.ctx, self.call, self.limit_ms = fresh.ctx, fresh.call, fresh.limit_ms


class _ThreadEngine(threading.local):
    engine: _Engine | None = None


_local = _ThreadEngine()


def _engine() -> _Engine:
    engine = _local.engine
    if engine is None:
        engine = _local.engine = _Engine()
    return engine


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
    engine = _engine()
    out = engine.run(expression, _to_json(bindings), limit)
    if out.startswith("\x01"):
        message, line = orjson.loads(out[1:])
        if message.startswith(_OUT_OF_MEMORY):  # caught by the prelude: the script's memory is free again
            engine.recover()
            raise ScriptError(_OOM_MESSAGE, line=line)
        raise ScriptError(message, line=line)
    try:
        return orjson.loads(out)
    except orjson.JSONDecodeError:
        # JSON.stringify escapes lone UTF-16 surrogates (``\\ud800``), which orjson refuses: make them
        # U+FFFD as ``String.prototype.toWellFormed`` would (valid pairs are never escaped).
        return orjson.loads(_LONE_SURROGATE.sub(r"\1\\ufffd", out))


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
