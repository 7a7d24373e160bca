"""WAIT: wait for a duration, until a date-time, or until updated over the API (contract 4.14)."""

from __future__ import annotations

import datetime as dt
import re
import time
import zoneinfo

from conductor_lab.engine.model import Task, TaskStatus, WorkflowTask
from conductor_lab.engine.tasks.base import Outcome, ScheduleContext, TaskType

_DURATION = re.compile(
    r"^\s*(?:(?P<d>\d+)\s*(?:days|day|d))?\s*(?:(?P<h>\d+)\s*(?:hours|hour|hrs|hr|h))?\s*"
    r"(?:(?P<m>\d+)\s*(?:minutes|minute|mins|min|m))?\s*(?:(?P<s>\d+)\s*(?:seconds|second|secs|sec|s))?\s*$",
    re.IGNORECASE,
)
_UNTIL_FORMATS = ("%Y-%m-%d %H:%M %z", "%Y-%m-%d %H:%M", "%Y-%m-%d")
_UTC_NAMES = frozenset({"UTC", "GMT", "Z", "UT"})


class WaitInputError(ValueError):
    """The duration or until input cannot be parsed."""


def parse_duration(text: str) -> int:
    """Seconds in a duration such as ``30s``, ``2 minutes``, ``1d 6h`` (components in this order)."""
    m = _DURATION.match(text)
    if m is None or not any(m.groupdict().values()):
        raise WaitInputError(f"Invalid duration format: {text}")
    d, h, mi, s = (int(m.group(k) or 0) for k in ("d", "h", "m", "s"))
    return ((d * 24 + h) * 60 + mi) * 60 + s


def parse_until(text: str) -> int:
    """Epoch ms of ``yyyy-MM-dd HH:mm[ zone]`` or ``yyyy-MM-dd`` (the server's zone when none).

    The zone is an offset (``+0200``), ``UTC``/``GMT``, an IANA name (``Europe/Paris``, ``EST``) or
    one of the server's own zone abbreviations (``time.tzname``)."""
    stripped = text.strip()
    head, _, zone = stripped.rpartition(" ")
    if head.count(" ") == 1 and zone and not zone[0].isdigit():  # "yyyy-MM-dd HH:mm <zone name>"
        tz = _zone(zone)
        if tz is not None:
            try:
                local = dt.datetime.strptime(head, "%Y-%m-%d %H:%M")
            except ValueError:
                pass
            else:
                zoned = local.astimezone() if isinstance(tz, str) else local.replace(tzinfo=tz)
                return int(zoned.timestamp() * 1000)
    for fmt in _UNTIL_FORMATS:
        try:
            parsed = dt.datetime.strptime(stripped, fmt)
        except ValueError:
            continue
        if parsed.tzinfo is None:
            parsed = parsed.astimezone()  # local zone, as conductor-oss's default time zone
        return int(parsed.timestamp() * 1000)
    raise WaitInputError(f"Invalid/Unsupported Wait Until format.  Provided: {text}")


def _zone(name: str) -> dt.tzinfo | str | None:
    """A zone name as a tzinfo, ``"local"`` for the server's own abbreviations, else None."""
    if name.upper() in _UTC_NAMES:
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        pass
    return "local" if name in time.tzname else None


def _given(value: object) -> bool:
    """conductor-oss reads ``duration``/``until`` only when not blank (``StringUtils.isNotBlank``)."""
    return value is not None and str(value).strip() != ""


def deadline(task: Task) -> int | None:
    """When a timed wait ends (epoch ms); None waits for an update. Raises WaitInputError."""
    duration = task.inputData.get("duration")
    until = task.inputData.get("until")
    if _given(duration) and _given(until):
        raise WaitInputError("Both 'duration' and 'until' specified. Please provide only one input")
    if _given(duration):
        return task.scheduledTime + parse_duration(str(duration)) * 1000
    if _given(until):
        return parse_until(str(until))
    return None


class Wait(TaskType):
    TYPE = "WAIT"
    reevaluate = True  # on timers: a timed wait completes once its deadline has passed

    def validate(self, node: WorkflowTask) -> list[str]:
        ip = node.inputParameters
        duration, until = ip.get("duration"), ip.get("until")
        if _given(duration) and _given(until):
            return [f"Both 'duration' and 'until' specified. Please provide only one input for taskName: {node.name}"]
        for key, parse in (("duration", parse_duration), ("until", parse_until)):
            value = ip.get(key)
            if isinstance(value, str) and _given(value) and "${" not in value:
                try:
                    parse(value)
                except WaitInputError as exc:
                    return [f"inputParameters.{key}: {exc} for taskName: {node.name}"]
        return []

    def schedule(self, node: WorkflowTask, ctx: ScheduleContext, iteration: int) -> list[Task]:
        task = ctx.new_task(node, self.TYPE, TaskStatus.IN_PROGRESS, iteration)
        task.inputData = ctx.input_for(node, task.taskId)
        try:
            due = deadline(task)
        except WaitInputError as exc:
            task.status = TaskStatus.FAILED_WITH_TERMINAL_ERROR
            task.reasonForIncompletion = str(exc)
            task.endTime = ctx.now
            return [task]
        if due is not None:
            task.callbackAfterSeconds = max(0, (due - ctx.now) // 1000)
        return [task]

    def execute(self, task: Task, ctx: ScheduleContext) -> Outcome | None:
        try:
            due = deadline(task)
        except WaitInputError:
            return None
        if due is None:
            return None
        if ctx.now >= due:
            return Outcome(TaskStatus.COMPLETED)
        return Outcome(wake_at=due)


TASK = Wait()
