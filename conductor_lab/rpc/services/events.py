"""``conductor.grpc.events.EventService`` over the engine's event handlers (as ``/api/event``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, TypeAlias

import grpc.aio

from conductor_lab.rpc.convert import from_proto, to_proto
from conductor_lab.rpc.gen.model import events_pb2 as model
from conductor_lab.rpc.gen.service import events_pb2 as api
from conductor_lab.rpc.gen.service.events_pb2_grpc import EventServiceServicer
from conductor_lab.rpc.status import streaming, unary

if TYPE_CHECKING:
    from conductor_lab.engine.executor import Executor

Ctx: TypeAlias = grpc.aio.ServicerContext


class EventService(EventServiceServicer):
    """Add, update, remove and list event handlers."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    @unary
    async def AddEventHandler(self, request: api.AddEventHandlerRequest, context: Ctx) -> api.AddEventHandlerResponse:
        await self.executor.events.add_handler(from_proto(request.handler))
        return api.AddEventHandlerResponse()

    @unary
    async def UpdateEventHandler(
        self, request: api.UpdateEventHandlerRequest, context: Ctx
    ) -> api.UpdateEventHandlerResponse:
        await self.executor.events.update_handler(from_proto(request.handler))
        return api.UpdateEventHandlerResponse()

    @unary
    async def RemoveEventHandler(
        self, request: api.RemoveEventHandlerRequest, context: Ctx
    ) -> api.RemoveEventHandlerResponse:
        await self.executor.events.remove_handler(request.name)
        return api.RemoveEventHandlerResponse()

    @streaming
    async def GetEventHandlers(
        self, request: api.GetEventHandlersRequest, context: Ctx
    ) -> AsyncIterator[model.EventHandler]:
        for handler in self.executor.events.get_handlers():
            yield to_proto(handler, model.EventHandler)

    @streaming
    async def GetEventHandlersForEvent(
        self, request: api.GetEventHandlersForEventRequest, context: Ctx
    ) -> AsyncIterator[model.EventHandler]:
        for handler in self.executor.events.get_handlers_for_event(request.event, request.active_only):
            yield to_proto(handler, model.EventHandler)
