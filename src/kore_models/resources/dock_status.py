"""The dock-status endpoint: read one job document."""

from __future__ import annotations

from .._http import Transport, encode_segment
from ..types import JobDocument
from ._parse import parse_as


class DockStatusAPI:
    """``kore.dock_status`` raw call: GET /dock-status/{dockStatusId}."""

    def __init__(self, transport: Transport):
        self._transport = transport

    async def get(self, dock_status_id: str) -> JobDocument:
        """Fetch the current document of a job."""
        response = await self._transport.request(
            "GET", ["dock-status", encode_segment(dock_status_id, what="dock status id")]
        )
        return parse_as(JobDocument, response, what="dock status")
