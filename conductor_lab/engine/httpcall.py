"""The ``HTTP`` system task's request logic: input parsing, validation and the async HTTP call.

Upstream: ``http-task/src/main/java/com/netflix/conductor/tasks/http/HttpTask.java`` (``start``,
``httpCall``, ``extractBody``, ``Input``, ``HttpResponse.asMap``),
``http-task/.../providers/DefaultRestTemplateProvider.java`` (timeouts),
``core/.../validations/WorkflowTaskTypeConstraint.java`` (``isHttpTaskValid``). conductor-oss runs on
Spring Boot 3.5 (Spring Framework 6.2: ``RestTemplate`` + ``DefaultResponseErrorHandler``) over
Apache HttpClient 5. This module only computes a task outcome; wiring it to the ``HTTP`` task type
(``asyncComplete`` -> ``IN_PROGRESS``, storing the outcome) is the caller's business.

Request spec (``http_request`` of the task input, or the task input itself when ``http_request`` is
absent or null): ``uri`` and ``method`` required; ``headers`` (map; null values dropped, others
rendered with Java's ``toString``), ``body`` (any), ``accept`` (string or list of strings, default
``application/json``; a list is sent as one ``Accept: a, b``), ``contentType`` (default
``application/json``), ``connectionTimeOut`` / ``readTimeOut`` (ms, default 3000; 0 = no limit, as
with Apache HttpClient). Unknown keys are ignored (the top-level form carries other inputs too).

Request body, as ``RestTemplate``'s converters write it: ``null`` -> no body; a string -> sent as
is, whatever the content type (``StringHttpMessageConverter`` comes before Jackson, so a string is
never JSON-quoted), encoded with the content type's ``charset`` (default UTF-8); anything else ->
compact JSON in UTF-8. ``Content-Type`` and ``Accept`` are always sent, even without a body.

Outcome, as ``HttpTask.start`` computes it:

* 2xx -> ``COMPLETED``; ``output = {"response": {"body", "headers", "statusCode", "reasonPhrase"}}``.
  ``headers`` is Spring's ``HttpHeaders`` multimap: ``{name: [value, ...]}``, names as the server
  sent them (case-insensitively merged). ``reasonPhrase`` is the standard phrase of the status code
  (``HttpStatus.valueOf(code).getReasonPhrase()``), not the server's. ``body`` is ``extractBody``:
  empty -> ``None``; a JSON object -> dict; array -> list; number -> float (``Double``); any other
  JSON value -> its text (``"abc"`` -> ``abc``, ``true`` -> ``"true"``, ``null`` -> ``"null"``);
  not JSON -> the text as is.
* 4xx / 5xx -> ``FAILED``: ``RestTemplate`` throws, ``httpCall`` rethrows ``new Exception(msg)`` and
  ``start`` sets ``reasonForIncompletion = "Failed to invoke HTTP task due to: " + e`` and
  ``output = {"response": e.toString()}`` (a string, not a map), where ``e.toString()`` is
  ``java.lang.Exception: <code> <server reason phrase> on <METHOD> request for "<uri without
  query>": <body>`` and ``<body>`` is ``[no body]`` or the body text in double quotes with each CR
  and LF replaced by ``<EOL>`` and other control characters by ``?`` (Spring's ``LogFormatUtils``).
* other statuses (1xx, 3xx that were not followed) -> ``FAILED``, reason ``No response from the
  remote service``, output ``response`` map as for 2xx (its ``body`` is always ``None``).
* I/O errors -> ``FAILED`` like 4xx/5xx, with Spring's ``ResourceAccessException`` message shape:
  ``java.lang.Exception: I/O error on <METHOD> request for "<uri>": <detail>``.
* missing ``uri`` -> ``FAILED``, ``Missing HTTP URI.  See documentation for HttpTask for required
  input parameters`` (two spaces, sic); missing ``method`` -> ``No HTTP method specified``; no
  output in both cases.

Differences from conductor-oss
------------------------------

* Redirects are not followed by default (``HttpCaller(follow_redirects=True)`` follows up to 20,
  stripping ``Authorization`` across origins). conductor-oss's Apache HttpClient follows redirects
  (up to 50, POST turned into GET on 301/302/303). A 3xx therefore ends ``FAILED`` with
  ``No response from the remote service`` -- and, when there is a ``Location``, `` (<code> redirect
  to "<location>" not followed)`` appended to make the reason useful.
* Input is checked before anything is sent (:func:`parse_request`): ``method`` must be one of GET,
  POST, PUT, DELETE, OPTIONS, HEAD, PATCH (case-insensitive, sent upper case; Spring 6 sends any
  token verbatim); ``uri`` must be an absolute ``http(s)`` URL (Spring fails later with
  ``IllegalArgumentException: URI is not absolute``) and an empty ``uri`` counts as missing;
  timeouts must be non-negative integers (numeric strings accepted, like Jackson's coercion); an
  explicit ``null`` timeout means the 3000 ms default (upstream falls back to the server-wide
  ``conductor.tasks.http.*`` defaults, 150/100 ms); ``contentType``/``accept`` values must contain
  ``/``; ``http_request`` must be a map. Failures end ``FAILED`` with a message naming the field
  (reason only, no output), instead of Jackson/Spring exceptions.
* A ``Content-Type`` or ``Accept`` entry in ``headers`` replaces the one from ``contentType`` /
  ``accept`` (Spring's ``HttpHeaders.add`` sends both values).
* A non-string body is sent as JSON whatever the content type (Spring finds no converter for, e.g.,
  a map as ``text/plain`` and fails). Strings without a ``charset`` in a non-JSON content type are
  encoded UTF-8 (``StringHttpMessageConverter`` uses ISO-8859-1); response text without a charset
  is decoded as UTF-8 (invalid bytes replaced) where Spring uses ISO-8859-1 for non-JSON types.
* The response body must be JSON as a whole to be parsed (Jackson's ``readTree`` ignores trailing
  content, so ``"12 monkeys"`` would become ``12.0`` upstream; here it stays text); ``NaN`` /
  ``Infinity`` are text too, as for Jackson.
* Response bodies larger than ``max_response_bytes`` (decoded size; ``Content-Length`` is checked
  first) end ``FAILED`` with ``... response body exceeds the limit of N bytes``; upstream reads
  everything. Error bodies (4xx/5xx) are bounded by the same limit.
* ``reasonPhrase`` of a status code Spring does not know (e.g. 299) is the server's phrase; upstream
  fails the task with ``No matching constant for [299]``.
* Every failure's exception class reads ``java.lang.Exception`` (what ``httpCall`` rethrows), also
  for invalid URIs and our own errors; I/O error details are ours (``Read timed out after 200 ms
  (readTimeOut)``, ``Connect timed out after ... (connectionTimeOut)``, ``Connect to <origin>
  failed: ...``), not Apache HttpClient's.
* Response headers are reported as received; Apache HttpClient drops ``Content-Encoding`` /
  ``Content-Length`` after transparent decompression, httpx does not.
* Proxy environment variables are ignored (``trust_env=False``), as with ``HttpClients.custom()``.
* URI templates (``{name}``) are not expanded: Spring's ``exchange(String, ...)`` would fail with
  ``Not enough variable values available to expand``; here braces are percent-encoded and sent.
"""

from __future__ import annotations

import asyncio
import codecs
import http
import json
import re
from dataclasses import dataclass
from typing import Any

import httpx

from conductor_lab.engine.params import to_java_string

__all__ = [
    "ALLOWED_METHODS",
    "DEFAULT_MEDIA_TYPE",
    "DEFAULT_TIMEOUT_MS",
    "MISSING_METHOD",
    "MISSING_REQUEST",
    "MISSING_URI",
    "NO_RESPONSE",
    "REQUEST_PARAMETER_NAME",
    "HttpCaller",
    "HttpInputError",
    "HttpRequest",
    "HttpResult",
    "parse_request",
    "validate_node_input",
]

REQUEST_PARAMETER_NAME = "http_request"
MISSING_REQUEST = (
    "Missing HTTP request. Task input MUST have a '" + REQUEST_PARAMETER_NAME + "' key with HttpTask.Input "
    "as value OR provide the input parameters directly. See documentation for HttpTask for required input "
    "parameters"
)
MISSING_URI = "Missing HTTP URI.  See documentation for HttpTask for required input parameters"
MISSING_METHOD = "No HTTP method specified"
NO_RESPONSE = "No response from the remote service"
FAILED_PREFIX = "Failed to invoke HTTP task due to: "
EXCEPTION_PREFIX = "java.lang.Exception: "

ALLOWED_METHODS: tuple[str, ...] = ("GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH")
DEFAULT_MEDIA_TYPE = "application/json"
DEFAULT_TIMEOUT_MS = 3000

COMPLETED = "COMPLETED"
FAILED = "FAILED"

_EOL = re.compile(r"[\n\r]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Java's \p{Cc}
_JSON_TYPE = re.compile(r"^application/(?:[\w.+-]*\+)?json$", re.IGNORECASE)
_THREAD_PARSE_BYTES = 1024 * 1024  # parse JSON bodies larger than this off the event loop


class HttpInputError(ValueError):
    """The task input does not describe a usable HTTP request; ``str(exc)`` is the task's reason."""


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A validated request spec (``HttpTask.Input``); timeouts in milliseconds, 0 = no limit."""

    uri: str
    method: str
    headers: dict[str, str]
    body: Any
    accept: str
    content_type: str
    connect_timeout_ms: int
    read_timeout_ms: int


@dataclass(frozen=True, slots=True)
class HttpResult:
    """The task outcome: a task status name, the task output and ``reasonForIncompletion``."""

    status: str  # "COMPLETED" or "FAILED" (task status names)
    output: dict[str, Any]  # the task output, e.g. {"response": {...}}
    reason: str | None  # reasonForIncompletion when FAILED


# -- input -----------------------------------------------------------------------------------------


def _is_expression(value: Any) -> bool:
    """True for a string holding a ``${...}`` reference, whose value is only known at run time."""
    return isinstance(value, str) and "${" in value


def _select_spec(task_input: dict[str, Any]) -> tuple[Any, str]:
    """``http_request`` if present and not null, else the input itself; and the field-name prefix."""
    spec = task_input.get(REQUEST_PARAMETER_NAME)
    if spec is None:
        return task_input, ""
    return spec, REQUEST_PARAMETER_NAME + "."


def _check_uri(value: Any, field: str, *, lenient: bool = False) -> str:
    """An absolute http(s) URL (``lenient``: any string holding an expression passes)."""
    if not isinstance(value, str):
        raise HttpInputError(f"{field} must be a string")
    if lenient and _is_expression(value):
        return value
    try:
        url = httpx.URL(value)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise HttpInputError(f"{field} '{value}' is not a valid URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise HttpInputError(f"{field} '{value}' is not an absolute http:// or https:// URL")
    return value


def _check_method(value: Any, field: str, *, lenient: bool = False) -> str:
    """One of :data:`ALLOWED_METHODS`, any case; returned upper case."""
    if not isinstance(value, str):
        raise HttpInputError(f"{field} must be a string")
    if lenient and _is_expression(value):
        return value
    method = value.strip().upper()
    if method not in ALLOWED_METHODS:
        raise HttpInputError(f"{field} '{value}' is not one of {', '.join(ALLOWED_METHODS)}")
    return method


def _check_timeout(value: Any, field: str, *, lenient: bool = False) -> int:
    """Milliseconds >= 0 from an int, an integral float or a numeric string; ``None`` -> default."""
    if value is None:
        return DEFAULT_TIMEOUT_MS
    if lenient and _is_expression(value):
        return DEFAULT_TIMEOUT_MS
    result: int | None = None
    if isinstance(value, bool):
        result = None
    elif isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, str):
        try:
            result = int(value.strip())
        except ValueError:
            result = None
    if result is None or result < 0:
        raise HttpInputError(f"{field} must be a non-negative integer number of milliseconds, got {value!r}")
    return result


def _check_media_type(value: Any, field: str, *, lenient: bool = False) -> str:
    """A ``type/subtype`` string (Spring's ``MediaType.valueOf`` also accepts ``*``)."""
    if not isinstance(value, str):
        raise HttpInputError(f"{field} must be a string")
    if lenient and _is_expression(value):
        return value
    text = value.strip()
    if text == "*":
        return "*/*"
    if "/" not in text:
        raise HttpInputError(f"{field} '{value}' is not a media type (does not contain '/')")
    return text


def _check_accept(value: Any, field: str, *, lenient: bool = False) -> str:
    """A media type or a list of them, joined as one ``Accept`` value."""
    if value is None:
        return DEFAULT_MEDIA_TYPE
    if isinstance(value, list):
        if not value:
            return DEFAULT_MEDIA_TYPE
        return ", ".join(_check_media_type(item, field, lenient=lenient) for item in value)
    return _check_media_type(value, field, lenient=lenient)


def _check_headers(value: Any, field: str) -> dict[str, str]:
    """A map of header name -> value; null values are dropped, others rendered with Java's toString."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise HttpInputError(f"{field} must be a map of header name to value")
    headers: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not name:
            raise HttpInputError(f"{field} has an invalid header name {name!r}")
        if item is not None:
            headers[name] = to_java_string(item)
    return headers


def parse_request(task_input: dict[str, Any]) -> HttpRequest:
    """Read the request spec from a task's (resolved) input, as ``HttpTask.start`` does.

    Raises :class:`HttpInputError` whose message is the task's ``reasonForIncompletion``: upstream's
    texts for a missing ``uri`` / ``method``, a message naming the field otherwise.
    """
    spec, prefix = _select_spec(task_input)
    if not isinstance(spec, dict):
        raise HttpInputError(MISSING_REQUEST)
    uri = spec.get("uri")
    if uri is None or uri == "":
        raise HttpInputError(MISSING_URI)
    method = spec.get("method")
    if method is None or method == "":
        raise HttpInputError(MISSING_METHOD)
    content_type = spec.get("contentType")
    return HttpRequest(
        uri=_check_uri(uri, prefix + "uri"),
        method=_check_method(method, prefix + "method"),
        headers=_check_headers(spec.get("headers"), prefix + "headers"),
        body=spec.get("body"),
        accept=_check_accept(spec.get("accept"), prefix + "accept"),
        content_type=(
            DEFAULT_MEDIA_TYPE
            if content_type is None
            else _check_media_type(content_type, prefix + "contentType")
        ),
        connect_timeout_ms=_check_timeout(spec.get("connectionTimeOut"), prefix + "connectionTimeOut"),
        read_timeout_ms=_check_timeout(spec.get("readTimeOut"), prefix + "readTimeOut"),
    )


def validate_node_input(input_parameters: dict[str, Any]) -> str | None:
    """Registration-time check of an ``HTTP`` workflow node's ``inputParameters``.

    Returns an error message naming the field (``http_request.uri is required``,
    ``http_request.method 'FOO' is not one of GET, ...``) or ``None``. Values holding ``${...}``
    expressions cannot be checked and pass, and so does an ``http_request`` that is one expression.
    Upstream (``isHttpTaskValid``) only requires ``http_request``, ``uri`` or ``method`` to be present
    here or ``http_request`` in the task definition's ``inputTemplate``: to honour the latter, pass
    the template merged under the parameters (``{**input_template, **input_parameters}``).
    """
    params = input_parameters or {}
    if params.get(REQUEST_PARAMETER_NAME) is not None:
        spec: Any = params[REQUEST_PARAMETER_NAME]
        prefix = REQUEST_PARAMETER_NAME + "."
        if _is_expression(spec):
            return None
        if not isinstance(spec, dict):
            return f"{REQUEST_PARAMETER_NAME} must be a map (or a ${{...}} expression)"
    elif "uri" in params or "method" in params:
        spec, prefix = params, ""
    else:
        spec, prefix = {}, REQUEST_PARAMETER_NAME + "."
    try:
        uri = spec.get("uri")
        if uri is None or uri == "":
            return f"{prefix}uri is required"
        _check_uri(uri, prefix + "uri", lenient=True)
        method = spec.get("method")
        if method is None or method == "":
            return f"{prefix}method is required"
        _check_method(method, prefix + "method", lenient=True)
        headers = spec.get("headers")
        if not _is_expression(headers):
            _check_headers(headers, prefix + "headers")
        accept = spec.get("accept")
        if not _is_expression(accept):
            _check_accept(accept, prefix + "accept", lenient=True)
        if spec.get("contentType") is not None:
            _check_media_type(spec["contentType"], prefix + "contentType", lenient=True)
        for key in ("connectionTimeOut", "readTimeOut"):
            _check_timeout(spec.get(key), prefix + key, lenient=True)
    except HttpInputError as exc:
        return str(exc)
    return None


# -- request / response helpers --------------------------------------------------------------------


def _charset(content_type: str | None) -> str | None:
    """The usable codec name of a Content-Type's ``charset`` parameter, if any."""
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            name = value.strip().strip('"')
            try:
                return codecs.lookup(name).name
            except LookupError:
                return None
    return None


def _encode_body(request: HttpRequest) -> bytes | None:
    """The request body bytes: strings as they are, anything else as compact JSON."""
    body = request.body
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode(_charset(request.content_type) or "utf-8", errors="replace")
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _request_headers(request: HttpRequest) -> list[tuple[bytes, bytes]]:
    """Content-Type and Accept, then the input's headers (replacing those two, case-insensitively)."""
    merged: dict[str, tuple[str, str]] = {
        "content-type": ("Content-Type", request.content_type),
        "accept": ("Accept", request.accept),
    }
    for name, value in request.headers.items():
        merged[name.lower()] = (name, value)
    return [
        (name.encode("ascii", errors="replace"), value.encode("utf-8")) for name, value in merged.values()
    ]


def _response_headers(response: httpx.Response) -> dict[str, list[str]]:
    """Spring's ``HttpHeaders`` shape: ``{name: [values]}``, first-seen name spelling per name."""
    encoding = response.headers.encoding
    spelled: dict[str, str] = {}
    result: dict[str, list[str]] = {}
    for raw_name, raw_value in response.headers.raw:
        name = raw_name.decode(encoding, errors="replace")
        key = spelled.setdefault(name.lower(), name)
        result.setdefault(key, []).append(raw_value.decode(encoding, errors="replace"))
    return result


def _reason_phrase(response: httpx.Response) -> str:
    """The standard phrase of the status code, else what the server sent."""
    try:
        return http.HTTPStatus(response.status_code).phrase
    except ValueError:
        return response.reason_phrase


def _reject_constant(name: str) -> Any:
    """``json.loads`` hook: NaN / Infinity are not JSON for Jackson either."""
    raise ValueError(name)


def _extract_body(text: str) -> Any:
    """``HttpTask.extractBody``: JSON object/array as is, number as float, other JSON as text."""
    try:
        node = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return text
    if isinstance(node, (dict, list)):
        return node
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, (int, float)):
        try:
            return float(node)
        except OverflowError:
            return node
    if node is None:
        return "null"
    return node


def _java_log_format(text: str) -> str:
    """Spring's ``LogFormatUtils.formatValue(text, -1, true)``."""
    return '"' + _CONTROL.sub("?", _EOL.sub("<EOL>", text)) + '"'


def _display_uri(uri: str) -> str:
    """The URI as Spring names it in messages: without the query string."""
    return uri.split("?", 1)[0]


def _failure(message: str) -> HttpResult:
    """``start``'s catch block: reason ``Failed to invoke HTTP task due to: <e>``, output ``<e>``."""
    exception = EXCEPTION_PREFIX + message
    return HttpResult(FAILED, {"response": exception}, FAILED_PREFIX + exception)


def _ms(value: int) -> float | None:
    """Milliseconds to httpx seconds; 0 means no limit."""
    return value / 1000.0 if value > 0 else None


class _BodyTooLarge(Exception):
    """The response body exceeds ``max_response_bytes``."""


# -- the caller ------------------------------------------------------------------------------------


class HttpCaller:
    """Shared async HTTP client (httpx.AsyncClient, connection pooling), concurrency cap, cancellation.

    At most ``max_concurrency`` requests are in flight; the others wait for a slot, and that wait
    does not count toward their timeouts. Cancelling the task awaiting :meth:`call` aborts the
    request (its connection is closed) and re-raises :class:`asyncio.CancelledError`. Use one
    instance per event loop; close it with :meth:`aclose`.
    """

    def __init__(
        self,
        *,
        max_concurrency: int = 64,
        max_response_bytes: int = 10 * 1024 * 1024,
        follow_redirects: bool = False,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        if max_response_bytes < 0:
            raise ValueError("max_response_bytes must be >= 0")
        self.max_concurrency = max_concurrency
        self.max_response_bytes = max_response_bytes
        self.follow_redirects = follow_redirects
        self._slots = asyncio.Semaphore(max_concurrency)
        self._client = httpx.AsyncClient(
            follow_redirects=follow_redirects,
            trust_env=False,
            # the semaphore caps concurrency, so the pool never makes a request wait
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=max_concurrency),
            headers={"User-Agent": "conductor-lab-http-task"},
        )

    async def call(self, task_input: dict[str, Any]) -> HttpResult:
        """Run the HTTP task for ``task_input``; request problems give ``FAILED`` results, never raise."""
        try:
            request = parse_request(task_input)
        except HttpInputError as exc:
            return HttpResult(FAILED, {}, str(exc))
        async with self._slots:
            return await self._execute(request)

    async def _execute(self, request: HttpRequest) -> HttpResult:
        """Send ``request`` and turn the response (or the error) into a task outcome."""
        where = f'{request.method} request for "{_display_uri(request.uri)}"'
        try:
            content = _encode_body(request)
        except (TypeError, ValueError) as exc:
            return _failure(f"Could not write request body for {where}: {exc}")
        timeout = httpx.Timeout(
            connect=_ms(request.connect_timeout_ms),
            read=_ms(request.read_timeout_ms),
            write=_ms(request.read_timeout_ms),
            pool=None,
        )
        try:
            async with self._client.stream(
                request.method,
                request.uri,
                headers=_request_headers(request),
                content=content,
                timeout=timeout,
            ) as response:
                return await self._outcome(request, response, where)
        except _BodyTooLarge as exc:
            return _failure(f"Response body of {where} {exc}")
        except httpx.ConnectTimeout:
            return _failure(
                f"I/O error on {where}: Connect timed out after {request.connect_timeout_ms} ms"
                " (connectionTimeOut)"
            )
        except httpx.ReadTimeout:
            return _failure(
                f"I/O error on {where}: Read timed out after {request.read_timeout_ms} ms (readTimeOut)"
            )
        except httpx.WriteTimeout:
            return _failure(
                f"I/O error on {where}: Write timed out after {request.read_timeout_ms} ms (readTimeOut)"
            )
        except httpx.ConnectError as exc:
            origin = _display_uri(request.uri)
            try:
                url = httpx.URL(request.uri)
                origin = f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")
            except (httpx.InvalidURL, ValueError):
                pass
            return _failure(
                f"I/O error on {where}: Connect to {origin} failed: {str(exc) or type(exc).__name__}"
            )
        except httpx.TooManyRedirects as exc:
            return _failure(f"I/O error on {where}: {exc}")
        except Exception as exc:  # any request problem is a FAILED task, never a crash
            return _failure(f"I/O error on {where}: {type(exc).__name__}: {exc}")

    async def _read_body(self, request: HttpRequest, response: httpx.Response) -> bytes:
        """Read the (decoded) body, at most ``max_response_bytes`` of it."""
        limit = self.max_response_bytes
        exceeded = f"(status {response.status_code}) exceeds the limit of {limit} bytes"
        length = response.headers.get("content-length")
        if (
            request.method != "HEAD"
            and length is not None
            and length.strip().isdigit()
            and int(length) > limit
        ):
            raise _BodyTooLarge(exceeded)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise _BodyTooLarge(exceeded)
            chunks.append(chunk)
        return b"".join(chunks)

    async def _outcome(self, request: HttpRequest, response: httpx.Response, where: str) -> HttpResult:
        """``HttpTask.start`` + ``httpCall`` for one received response."""
        status = response.status_code
        text_encoding = response.charset_encoding
        try:
            text_encoding = codecs.lookup(text_encoding).name if text_encoding else "utf-8"
        except LookupError:
            text_encoding = "utf-8"
        if 400 <= status < 600:
            raw = await self._read_body(request, response)
            body_text = (
                "[no body]" if not raw else _java_log_format(raw.decode(text_encoding, errors="replace"))
            )
            return _failure(f"{status} {response.reason_phrase} on {where}: {body_text}")
        result: dict[str, Any] = {
            "body": None,
            "headers": _response_headers(response),
            "statusCode": status,
            "reasonPhrase": _reason_phrase(response),
        }
        if 200 <= status < 300:
            raw = await self._read_body(request, response)
            if raw:
                text = raw.decode(text_encoding, errors="replace")
                if len(raw) > _THREAD_PARSE_BYTES:
                    result["body"] = await asyncio.to_thread(_extract_body, text)
                else:
                    result["body"] = _extract_body(text)
            return HttpResult(COMPLETED, {"response": result}, None)
        reason = NO_RESPONSE
        location = response.headers.get("location")
        if 300 <= status < 400 and location:
            reason += f' ({status} redirect to "{location}" not followed)'
        return HttpResult(FAILED, {"response": result}, reason)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()
