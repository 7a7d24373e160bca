"""The gRPC listener: a ``grpc.aio`` server on the engine's own event loop.

``open_server`` (``conductor_lab/server/run.py``) starts it beside the REST server when a
``grpc_port`` is given and stops it before the executor closes, so its servicers run where the REST
handlers run and call the same ``Executor`` operations. It serves conductor-oss's TaskService,
WorkflowService, MetadataService and EventService, the standard health service
(``grpc.health.v1``) and server reflection.

Security as REST: the address was checked by ``check_binding`` (loopback unless ``--allow-remote``
with a token); with a token every call but the health checks must carry
``authorization: Bearer <token>`` in its metadata, compared in constant time (UNAUTHENTICATED
otherwise). Requests above the REST body limit are refused with RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from conductor_lab.rpc.gen.service import events_pb2, metadata_pb2, tasks_pb2, workflows_pb2
from conductor_lab.rpc.gen.service.events_pb2_grpc import add_EventServiceServicer_to_server
from conductor_lab.rpc.gen.service.metadata_pb2_grpc import add_MetadataServiceServicer_to_server
from conductor_lab.rpc.gen.service.tasks_pb2_grpc import add_TaskServiceServicer_to_server
from conductor_lab.rpc.gen.service.workflows_pb2_grpc import add_WorkflowServiceServicer_to_server
from conductor_lab.rpc.services.events import EventService
from conductor_lab.rpc.services.metadata import MetadataService
from conductor_lab.rpc.services.tasks import TaskService
from conductor_lab.rpc.services.workflows import WorkflowService

if TYPE_CHECKING:
    from conductor_lab.engine.executor import Executor

log = logging.getLogger("conductor_lab.rpc")

#: The full names of the services this server implements (health and reflection aside).
SERVICE_NAMES = (
    tasks_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name,
    workflows_pb2.DESCRIPTOR.services_by_name["WorkflowService"].full_name,
    metadata_pb2.DESCRIPTOR.services_by_name["MetadataService"].full_name,
    events_pb2.DESCRIPTOR.services_by_name["EventService"].full_name,
)
_OPEN_PREFIX = "/grpc.health.v1.Health/"  # probes carry no token (REST's /health is open too)
UNAUTHENTICATED_MESSAGE = "Missing or invalid token: send metadata 'authorization: Bearer <token>'"


class ListenFailed(OSError):
    """grpcio could not bind the address (it says no more than that)."""


@dataclass
class GrpcServer:
    """A started gRPC listener: ``port`` is the bound one (``grpc_port=0`` picks a free port)."""

    server: grpc.aio.Server
    health: health.aio.HealthServicer
    host: str
    port: int

    @property
    def target(self) -> str:
        """``host:port`` for ``grpc.aio.insecure_channel``."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"

    async def stop(self, grace: float) -> None:
        """Health says NOT_SERVING, new calls are refused, running ones get ``grace`` seconds."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


class BearerToken(grpc.aio.ServerInterceptor):
    """Every call but the health checks needs ``authorization: Bearer <token>``."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def allows(self, metadata: Any) -> bool:
        for key, value in metadata or ():
            if key == "authorization" and isinstance(value, str) and value[:7].lower() == "bearer ":
                return hmac.compare_digest(value[7:].strip().encode(), self._token)
        return False

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or method.startswith(_OPEN_PREFIX):
            return handler
        if self.allows(handler_call_details.invocation_metadata):
            return handler
        return _refusing(handler)


def _refusing(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``handler`` that answers UNAUTHENTICATED."""

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)

    async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)
        yield None  # pragma: no cover - abort raises

    codec = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(stream, **codec)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(unary, **codec)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(stream, **codec)
    return grpc.unary_unary_rpc_method_handler(unary, **codec)


async def start_grpc(
    executor: Executor, *, host: str, port: int, token: str | None, max_message_bytes: int
) -> GrpcServer:
    """Bind ``host:port`` and start serving on the running event loop (the engine's)."""
    server = grpc.aio.server(
        interceptors=[BearerToken(token)] if token else None,
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),  # a port in use is an error, as for REST
        ],
    )
    add_TaskServiceServicer_to_server(TaskService(executor), server)
    add_WorkflowServiceServicer_to_server(WorkflowService(executor), server)
    add_MetadataServiceServicer_to_server(MetadataService(executor), server)
    add_EventServiceServicer_to_server(EventService(executor), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    address = f"[{host.strip('[]')}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise ListenFailed(f"could not bind gRPC to {address}: {exc}") from exc
    if not bound:
        raise ListenFailed(f"could not bind gRPC to {address}")
    await server.start()
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("gRPC listening on %s", address.replace(f":{port}", f":{bound}"))
    return GrpcServer(server, health_servicer, host, bound)
