"""Event handlers: the ``/api/event`` definitions and what happens to a published message.

Upstream: ``DefaultEventProcessor`` (matching, condition, one EventExecution per action),
``SimpleActionProcessor`` (the actions), ``JsonUtils`` (JSON-string expansion) and the
``EventHandlerDAO`` implementations (conflict / not-found messages); contract §2.5, §3.10, §10.

How a message travels here:

* ``publish(queue, message_id, payload)`` is called on the loop thread (by the EVENT task). The
  event name is the queue string itself (``conductor:<workflow>:<ref>``, ``sqs:<queue>``). If an
  active handler listens for that event, processing is scheduled as a coroutine on the loop (the
  caller is never blocked); otherwise the message waits in a bounded in-memory buffer per queue
  (``MAX_BUFFERED_PER_QUEUE``, oldest dropped with a warning) and is delivered as soon as a
  matching handler becomes active. conductor-oss keeps such messages in its queue store and
  subscribes to handlers' events every 60 s; here handler changes take effect at once, and buffered
  or in-flight messages are not durable across a crash (``docs/compat.md``).
* Per active handler of the event: the ``condition`` (if any) is evaluated on the JSON-expanded
  payload (JavaScript with ``$`` = the payload, or ``value-param``: the condition names a key of
  the payload); false -> one SKIPPED EventExecution ``<messageId>_0``. Otherwise each action gets
  an EventExecution ``<messageId>_<index>`` (an id already seen for that handler is a duplicate
  delivery and is skipped) that ends COMPLETED (output = the action's result) or FAILED
  (``output.exception``).
* Actions: ``start_workflow``, ``complete_task``, ``fail_task`` as upstream;
  ``terminate_workflow``, ``update_workflow_variables`` (not executed upstream either) and
  ``start_agent`` (no agent feature here) fail with "Action not supported ...".

State changes go through the executor's public coroutines (``start_workflow``, ``update_task``),
so they are committed like any request; EventExecution records are appended to the group commit
(table ``cl_event_executions``). Nothing here raises into the loop: errors are logged and, where a
message was being processed, recorded as a FAILED execution.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
from collections import OrderedDict, deque
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from conductor_lab.engine import params
from conductor_lab.engine.commit import dumps
from conductor_lab.engine.metadata import raise_if
from conductor_lab.engine.model import EventAction, EventHandler, TaskDetails
from conductor_lab.engine.store.base import EventExecutionRow, EventHandlerRow
from conductor_lab.errors import ConductorLabError, Conflict, MalformedBody, NotFound

if TYPE_CHECKING:
    from conductor_lab.engine.executor import Executor

__all__ = ["MAX_BUFFERED_PER_QUEUE", "EventService", "expand"]

log = logging.getLogger(__name__)

#: Messages kept per queue while no active handler listens for its event (oldest dropped beyond).
MAX_BUFFERED_PER_QUEUE = 10_000
#: (handler, execution id) pairs remembered to skip duplicate deliveries of a message.
MAX_REMEMBERED_EXECUTIONS = 10_000
#: A drop warning is logged for the first dropped message of a queue and then every this many.
DROP_WARNING_EVERY = 1_000

_LOOP_SUFFIX = re.compile(r"__\d+$")


# --------------------------------------------------------------------------------------------
# JSON-string expansion (JsonUtils.expand)


def expand(value: Any) -> Any:
    """conductor-oss ``JsonUtils.expand``: string values that look like JSON objects or arrays are
    replaced by the parsed value; works in place on dicts and lists and returns ``value``.

    Faithful to upstream, quirks included: map values that start with ``{`` or ``[`` (after
    trimming) and parse are replaced, and nested maps and lists are visited; a parsed value is not
    expanded again; strings that are list elements are left as they are (upstream assigns the
    parsed value to a local variable only); a top-level string is parsed whatever it starts with.
    """
    if isinstance(value, list):
        _expand_list(value)
        return value
    if isinstance(value, dict):
        _expand_map(value)
        return value
    if isinstance(value, str):
        return _json_or_same(value)
    return value


def _expand_map(m: dict[str, Any]) -> None:
    for key, item in m.items():
        if isinstance(item, str):
            if _looks_like_json(item):
                m[key] = _json_or_same(item)
        elif isinstance(item, dict):
            _expand_map(item)
        elif isinstance(item, list):
            _expand_list(item)


def _expand_list(items: list[Any]) -> None:
    for item in items:
        if isinstance(item, dict):
            _expand_map(item)
        elif isinstance(item, list):
            _expand_list(item)


def _looks_like_json(text: str) -> bool:
    stripped = text.strip()
    return stripped.startswith(("{", "["))


def _json_or_same(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


# --------------------------------------------------------------------------------------------
# Small helpers


def _truthy(value: Any) -> bool:
    """``ScriptEvaluator.toBoolean``: Boolean true, or a number greater than 0."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value > 0
    return False


def _java(value: Any) -> str:
    """A value as Java's string concatenation renders it (``null`` for None)."""
    return "null" if value is None else params.to_java_string(value)


def _text(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, str) else params.to_java_string(value)


def _message(exc: BaseException) -> str:
    """An exception as the text an EventExecution records (validation details included)."""
    if isinstance(exc, ConductorLabError):
        text = exc.message
        if exc.validation_errors:
            text += " " + "; ".join(str(e.get("message")) for e in exc.validation_errors)
        return text
    return str(exc) or type(exc).__name__


def _copy_payload(payload: Any) -> Any:
    """The message as a queue would carry it: a JSON copy (a string payload that is JSON is parsed,
    as upstream's ``getPayloadObject`` does; anything else stays a string)."""
    if isinstance(payload, str | bytes):
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        return _json_or_same(text)
    return orjson.loads(orjson.dumps(payload, default=str, option=orjson.OPT_NON_STR_KEYS))


def _doc(payload: Any) -> dict[str, Any]:
    """The document ``${...}`` expressions of an action read: the payload when it is an object."""
    return payload if isinstance(payload, dict) else {}


class _Candidate(NamedTuple):
    task_id: str
    ref: str
    iteration: int
    seq: int
    terminal: bool


class UnsupportedAction(ConductorLabError):
    """An action conductor-oss's SimpleActionProcessor does not execute (the execution FAILS)."""

    status = 500


# --------------------------------------------------------------------------------------------
# The service


class EventService:
    """Event handler definitions (in memory, durable through the group commit) and processing.

    Constructed with the executor and using only its ``committer``, ``clock``, ``start_workflow``,
    ``update_task``, ``get_workflow``, ``workflows``, ``tasks`` and ``_loop`` (the store through
    ``committer.store``).
    """

    def __init__(self, executor: Executor, *, buffer_size: int = MAX_BUFFERED_PER_QUEUE) -> None:
        self._ex = executor
        self._handlers: dict[str, EventHandler] = {}
        self._by_event: dict[str, dict[str, None]] = {}  # event -> handler names (ordered set)
        self._buffers: dict[str, deque[tuple[str, Any]]] = {}
        self._buffer_size = max(1, buffer_size)
        self._dropped: dict[str, int] = {}
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._inflight: set[asyncio.Task[None]] = set()
        self._scripts: ThreadPoolExecutor | None = None  # one thread (one JavaScript context) for conditions
        self.processed = 0  # messages whose processing finished (introspection, tests)

    # -- definitions ---------------------------------------------------------------------------

    def recover(self) -> None:
        """Load the stored handlers (runs in the executor's reader thread at start)."""
        for text in self._ex.store.load_event_handlers():
            try:
                eh: EventHandler = EventHandler.parse(orjson.loads(text))
            except Exception:
                log.exception("stored event handler could not be read: %.200s", text)
                continue
            if eh.name and eh.event:
                self._index(eh)

    async def add_handler(self, data: Any) -> None:
        """``POST /api/event``: 409 when a handler of that name exists."""
        eh = self._parse(data, "addEventHandler")
        assert eh.name is not None
        if eh.name in self._handlers:
            raise Conflict(f"EventHandler with name {eh.name} already exists!")
        self._put(eh)
        await self._ex.committer.barrier()

    async def update_handler(self, data: Any) -> None:
        """``PUT /api/event``: 404 when no handler has that name."""
        eh = self._parse(data, "updateEventHandler")
        assert eh.name is not None
        if eh.name not in self._handlers:
            raise NotFound(f"EventHandler with name {eh.name} not found!")
        self._put(eh)
        await self._ex.committer.barrier()

    async def remove_handler(self, name: str) -> None:
        """``DELETE /api/event/{name}``: 404 when no handler has that name."""
        eh = self._handlers.get(name)
        if eh is None:
            raise NotFound(f"EventHandler with name {name} not found!")
        self._unindex(eh)
        self._ex.committer.delete_event_handler(name)
        await self._ex.committer.barrier()

    def get_handlers(self) -> list[dict[str, Any]]:
        """``GET /api/event``: every handler, by name."""
        return [self._handlers[name].to_json() for name in sorted(self._handlers)]

    def get_handlers_for_event(self, event: str, active_only: bool = True) -> list[dict[str, Any]]:
        """``GET /api/event/{event}``: handlers whose ``event`` equals ``event`` exactly."""
        return [eh.to_json() for eh in self._listening(event) if eh.active or not active_only]

    @staticmethod
    def _parse(data: Any, method: str) -> EventHandler:
        if not isinstance(data, dict):
            raise MalformedBody("Cannot deserialize EventHandler from a non-object JSON value")
        eh: EventHandler = EventHandler.parse(data)
        path = f"{method}.eventHandler"
        errs: list[dict[str, Any]] = []

        def err(prop: str, message: str, value: Any) -> None:
            item: dict[str, Any] = {"path": f"{path}.{prop}", "message": message}
            if isinstance(value, str):
                item["invalidValue"] = value
            errs.append(item)

        if not eh.name:
            err("name", "Missing event handler name", eh.name)
        if not eh.event:
            err("event", "Missing event location", eh.event)
        if not eh.actions:
            err("actions", "No actions specified. Please specify at-least one action", None)
        raise_if(errs)
        return eh

    def _put(self, eh: EventHandler) -> None:
        assert eh.name is not None and eh.event is not None
        self._index(eh)
        self._ex.committer.event_handler(EventHandlerRow(eh.name, eh.event, eh.active, dumps(eh.to_json())))
        if eh.active:
            self._deliver_buffered(eh.event)

    def _index(self, eh: EventHandler) -> None:
        assert eh.name is not None and eh.event is not None
        old = self._handlers.get(eh.name)
        if old is not None and old.event != eh.event:
            self._unindex(old)
        self._handlers[eh.name] = eh
        self._by_event.setdefault(eh.event, {})[eh.name] = None

    def _unindex(self, eh: EventHandler) -> None:
        assert eh.name is not None and eh.event is not None
        self._handlers.pop(eh.name, None)
        names = self._by_event.get(eh.event)
        if names is not None:
            names.pop(eh.name, None)
            if not names:
                del self._by_event[eh.event]

    def _listening(self, event: str) -> list[EventHandler]:
        """The handlers of ``event`` by name (the order they see a message in)."""
        return [self._handlers[name] for name in sorted(self._by_event.get(event, ()))]

    def _active(self, event: str) -> list[EventHandler]:
        return [eh for eh in self._listening(event) if eh.active]

    # -- publishing ----------------------------------------------------------------------------

    def publish(self, queue: str, message_id: str, payload: Any) -> None:
        """Publish one message to ``queue`` (its event name); never blocks, never raises.

        Called on the loop thread (from another thread the call is handed over to the loop). The
        payload is copied as JSON, so later changes to the caller's objects do not reach it.
        """
        loop = self._ex.loop
        if loop is None:
            log.error(
                "event %s: message %s published before the executor started; dropped", queue, message_id
            )
            return
        try:
            data = _copy_payload(payload)
        except Exception:
            log.exception("event %s: message %s has a payload that is not JSON; dropped", queue, message_id)
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not loop:
            loop.call_soon_threadsafe(self._accept, queue, message_id, data)
        else:
            self._accept(queue, message_id, data)

    def _accept(self, queue: str, message_id: str, data: Any) -> None:
        """On the loop: process the (copied) message now, or keep it until a handler listens."""
        if self._active(queue):
            self._schedule(queue, message_id, data)
        else:
            self._buffer(queue, message_id, data)

    def buffered(self, queue: str) -> int:
        """How many messages of ``queue`` wait for an active handler."""
        buf = self._buffers.get(queue)
        return len(buf) if buf is not None else 0

    @property
    def in_flight(self) -> int:
        """Messages being processed now."""
        return len(self._inflight)

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait (at most ``timeout`` seconds) until no message is being processed (tests, shutdown)."""
        async with asyncio.timeout(timeout):
            while self._inflight:
                await asyncio.gather(*list(self._inflight), return_exceptions=True)

    def _buffer(self, queue: str, message_id: str, payload: Any) -> None:
        buf = self._buffers.get(queue)
        if buf is None:
            buf = self._buffers[queue] = deque()
        if len(buf) >= self._buffer_size:
            old_id, _ = buf.popleft()
            dropped = self._dropped.get(queue, 0) + 1
            self._dropped[queue] = dropped
            if dropped == 1 or dropped % DROP_WARNING_EVERY == 0:
                log.warning(
                    "event %s: %d messages wait for an active event handler; "
                    "dropped the oldest (%s; %d so far)",
                    queue,
                    self._buffer_size,
                    old_id,
                    dropped,
                )
        buf.append((message_id, payload))

    def _deliver_buffered(self, event: str) -> None:
        buf = self._buffers.pop(event, None)
        self._dropped.pop(event, None)
        if buf:
            log.info("event %s: delivering %d buffered messages", event, len(buf))
            for message_id, payload in buf:
                self._schedule(event, message_id, payload)

    def _schedule(self, event: str, message_id: str, payload: Any) -> None:
        loop = self._ex.loop
        assert loop is not None
        task = loop.create_task(self._handle(event, message_id, payload), name=f"event {event} {message_id}")
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    # -- processing (DefaultEventProcessor) ----------------------------------------------------

    async def _handle(self, event: str, message_id: str, payload: Any) -> None:
        try:
            handlers = self._active(event)
            if not handlers:  # deactivated or removed since the message was published
                self._buffer(event, message_id, payload)
                return
            for eh in handlers:
                try:
                    await self._run_handler(eh, event, message_id, payload)
                except Exception:
                    log.exception("event %s: handler %s failed on message %s", event, eh.name, message_id)
        finally:
            self.processed += 1

    async def _run_handler(self, eh: EventHandler, event: str, message_id: str, payload: Any) -> None:
        assert eh.name is not None
        if eh.condition:
            try:
                ok = await self._condition(eh, payload)
            except Exception as exc:
                log.error(
                    "event %s: condition of handler %s failed on message %s: %s",
                    event,
                    eh.name,
                    message_id,
                    _message(exc),
                )
                self._record(
                    eh,
                    f"{message_id}_0",
                    message_id,
                    event,
                    self._ex.clock(),
                    "FAILED",
                    None,
                    {"exception": _message(exc), "condition": eh.condition},
                )
                return
            if not ok:
                log.debug("event %s: condition %s of handler %s is false", event, eh.condition, eh.name)
                self._record(
                    eh,
                    f"{message_id}_0",
                    message_id,
                    event,
                    self._ex.clock(),
                    "SKIPPED",
                    None,
                    {
                        "msg": payload if isinstance(payload, str) else dumps(payload),
                        "condition": eh.condition,
                    },
                )
                return
        runs: list[Coroutine[Any, Any, None]] = []
        for i, action in enumerate(eh.actions):
            execution_id = f"{message_id}_{i}"
            if not self._remember(eh.name, execution_id):
                log.warning("Duplicate delivery/execution of message: %s (handler %s)", message_id, eh.name)
                continue
            runs.append(self._execute(eh, action, execution_id, message_id, event, payload))
        if runs:
            # each action's synchronous part runs in order; their commits are shared
            await asyncio.gather(*runs)

    async def _condition(self, eh: EventHandler, payload: Any) -> bool:
        condition = eh.condition or ""
        expanded = expand(copy.deepcopy(payload))
        kind = eh.evaluatorType
        if kind == "value-param":
            if not isinstance(expanded, dict):
                raise ConductorLabError(f"Input has to be a JSON object: {type(expanded).__name__}")
            return _truthy(expanded.get(condition))
        if kind == "python":
            raise ConductorLabError("evaluatorType 'python' is not supported by this server")
        from conductor_lab.engine import scripting  # the JavaScript engine loads on first use

        # off the loop: a slow condition (up to the script time limit) must not stall the engine
        if self._scripts is None:
            self._scripts = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conductor-lab-event-js")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._scripts, scripting.eval_bool, condition, expanded)

    async def _execute(
        self,
        eh: EventHandler,
        action: EventAction,
        execution_id: str,
        message_id: str,
        event: str,
        payload: Any,
    ) -> None:
        created = self._ex.clock()
        try:
            output = await self._action(action, payload, event, message_id)
            status = "COMPLETED"
        except Exception as exc:
            log.error(
                "Error executing action: %s for event: %s with messageId: %s: %s",
                action.action,
                event,
                message_id,
                _message(exc),
            )
            output, status = {"exception": _message(exc)}, "FAILED"
        self._record(eh, execution_id, message_id, event, created, status, action.action, output)

    def _remember(self, name: str, execution_id: str) -> bool:
        """False when this execution was seen before (a duplicate delivery)."""
        key = (name, execution_id)
        if key in self._seen:
            return False
        self._seen[key] = None
        while len(self._seen) > MAX_REMEMBERED_EXECUTIONS:
            self._seen.popitem(last=False)
        return True

    def _record(
        self,
        eh: EventHandler,
        execution_id: str,
        message_id: str,
        event: str,
        created: int,
        status: str,
        action: str | None,
        output: dict[str, Any],
    ) -> None:
        assert eh.name is not None
        if action is None and not self._remember(eh.name, execution_id):
            return  # the condition's outcome for this message is on record already
        try:
            text = dumps(output)
        except Exception as exc:  # never lose the record over an odd output value
            text = dumps({"exception": f"output could not be serialised: {exc}"})
        self._ex.committer.event_execution(
            EventExecutionRow(execution_id, message_id, eh.name, event, created, status, action, text)
        )

    # -- actions (SimpleActionProcessor) -------------------------------------------------------

    async def _action(self, action: EventAction, payload: Any, event: str, message_id: str) -> dict[str, Any]:
        doc = expand(copy.deepcopy(payload)) if action.expandInlineJSON else payload
        kind = action.action
        if kind == "start_workflow":
            return await self._start_workflow(action, doc, event, message_id)
        if kind == "complete_task":
            return await self._complete_task(action.complete_task, kind, doc, event, message_id)
        if kind == "fail_task":
            return await self._complete_task(action.fail_task, kind, doc, event, message_id)
        raise UnsupportedAction(f"Action not supported {kind} for event {event}")

    async def _start_workflow(
        self, action: EventAction, payload: Any, event: str, message_id: str
    ) -> dict[str, Any]:
        sw = action.start_workflow
        if sw is None:
            raise ConductorLabError("start_workflow: the action has no start_workflow parameters")
        doc = _doc(payload)
        workflow_input = params.evaluate(sw.input or {}, doc)
        replaceable: dict[str, Any] = {"taskToDomain": "${taskToDomain}"}
        if sw.correlationId is not None:
            replaceable["correlationId"] = sw.correlationId
        replaced = params.evaluate(replaceable, doc)
        task_to_domain = sw.taskToDomain if sw.taskToDomain is not None else replaced.get("taskToDomain")
        workflow_input["conductor.event.messageId"] = message_id
        workflow_input["conductor.event.name"] = event
        correlation_id = _text(replaced.get("correlationId"))
        request: dict[str, Any] = {
            "name": sw.name,
            "version": sw.version,
            "correlationId": correlation_id if correlation_id is not None else sw.correlationId,
            "input": workflow_input,
            "event": event,
        }
        if isinstance(task_to_domain, dict) and task_to_domain:
            request["taskToDomain"] = task_to_domain
        workflow_id = await self._ex.start_workflow(request)
        wf = self._ex.workflows.get(workflow_id)
        if wf is not None and wf.event != event:  # the Workflow's ``event``: the event that started it
            wf.event = event
            self._ex.committer.workflow(wf)
            await self._ex.committer.barrier()
        return {"workflowId": workflow_id}

    async def _complete_task(
        self, details: TaskDetails | None, kind: str, payload: Any, event: str, message_id: str
    ) -> dict[str, Any]:
        if details is None:
            raise ConductorLabError(f"{kind}: the action has no {kind} parameters")
        template: dict[str, Any] = {
            "workflowId": details.workflowId,
            "taskId": details.taskId,
            "taskRefName": details.taskRefName,
            "reasonForIncompletion": details.reasonForIncompletion,
        }
        template.update(details.output or {})
        replaced: dict[str, Any] = params.evaluate(template, _doc(payload))
        workflow_id = _text(replaced.get("workflowId"))
        task_id = _text(replaced.get("taskId"))
        ref = _text(replaced.get("taskRefName"))
        reason = _text(replaced.get("reasonForIncompletion"))

        target: tuple[str, str] | None = None
        if task_id:
            target = await self._task_by_id(task_id)
        elif workflow_id and ref:
            target = await self._task_by_ref(workflow_id, ref)  # NotFound for an unknown workflow
        if target is None:
            replaced["error"] = (
                f"No task found with taskId: {_java(task_id)}, reference name: {_java(ref)}, "
                f"workflowId: {_java(workflow_id)}"
            )
            return replaced
        replaced["conductor.event.messageId"] = message_id
        replaced["conductor.event.name"] = event
        status = "COMPLETED" if kind == "complete_task" else "FAILED"
        result: dict[str, Any] = {
            "workflowInstanceId": target[1],
            "taskId": target[0],
            "status": status,
            "outputData": dict(replaced),
        }
        if status == "FAILED" and reason is not None:
            result["reasonForIncompletion"] = reason
        await self._ex.update_task(result)
        return replaced

    async def _task_by_id(self, task_id: str) -> tuple[str, str] | None:
        """(task id, workflow id) of the task, or None if there is no such task."""
        t = self._ex.tasks.get(task_id)
        if t is not None:
            return t.taskId, t.workflowInstanceId
        # not in memory: a task of a finished workflow (its update is then ignored), or none at all
        await self._ex.committer.barrier()
        loop = self._ex.loop
        assert loop is not None
        text = await loop.run_in_executor(None, self._ex.store.get_task, task_id)
        if text is None:
            return None
        wf_id = orjson.loads(text).get("workflowInstanceId")
        return (task_id, wf_id) if isinstance(wf_id, str) else None

    async def _task_by_ref(self, workflow_id: str, ref: str) -> tuple[str, str] | None:
        """The task ``ref`` names in the workflow: the open one of the highest iteration (DO_WHILE
        tasks match by their reference name without the ``__N`` suffix); if none is open, the
        latest one (whose update is then ignored, as upstream's)."""
        wf = await self._ex.get_workflow(workflow_id)  # NotFound: "No such workflow found by id"
        candidates = [
            _Candidate(t.taskId, t.referenceTaskName, t.iteration, t.seq, t.status.terminal) for t in wf.tasks
        ]
        matching = [c for c in candidates if c.ref == ref or _LOOP_SUFFIX.sub("", c.ref) == ref]
        if not matching:
            return None
        pool = [c for c in matching if not c.terminal] or matching
        best = max(pool, key=lambda c: (c.iteration, c.seq))
        return best.task_id, workflow_id

    # -- history -------------------------------------------------------------------------------

    async def get_executions(self, name_or_event: str, limit: int = 100) -> list[dict[str, Any]]:
        """EventExecution JSON of the handler so named or for that event (newest ``limit``, oldest
        first), read from the store once everything recorded so far is committed."""
        await self._ex.committer.barrier()
        loop = self._ex.loop
        assert loop is not None
        rows = await loop.run_in_executor(
            None, self._ex.store.get_event_executions, name_or_event, limit
        )
        out: list[dict[str, Any]] = []
        for r in rows:
            item: dict[str, Any] = {
                "id": r.id,
                "messageId": r.message_id,
                "name": r.name,
                "event": r.event,
                "created": r.created,
                "status": r.status,
            }
            if r.action is not None:
                item["action"] = r.action
            item["output"] = orjson.loads(r.output) if r.output else {}
            out.append(item)
        return out
