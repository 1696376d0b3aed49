"""``kore.dock_status``: read a job's document, watch it change, wait until it ends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from .._http import Transport, encode_segment
from ..transfer.poll import PollPolicy, wait_for_job, watch_job
from ..types import JobDocument
from ._parse import parse_as

__all__ = ["DockStatus"]


class DockStatus:
    """``kore.dock_status``: GET /dock-status/{dockStatusId}, plus ``watch`` and ``wait``."""

    def __init__(self, transport: Transport):
        self._transport = transport

    def __repr__(self) -> str:
        return f"DockStatus(host={self._transport.settings.host!r})"

    @property
    def poll_policy(self) -> PollPolicy:
        """The poll pacing of this client's settings."""
        return PollPolicy.from_settings(self._transport.settings)

    async def get(self, dock_status_id: str) -> JobDocument:
        """Fetch the current document of a job."""
        response = await self._transport.request(
            "GET", ["dock-status", encode_segment(dock_status_id, what="dock status id")]
        )
        return parse_as(JobDocument, response, what="dock status")

    def watch(
        self, dock_status_id: str, *, timeout: float | None = None
    ) -> AsyncIterator[JobDocument]:
        """Async iterator of the job's documents, one per change, ending when it ends.

        ``timeout`` is a hard deadline in seconds (JobTimeoutError), retries included.
        """
        return watch_job(self, dock_status_id, policy=self.poll_policy, timeout=timeout)

    async def wait(
        self,
        dock_status_id: str,
        *,
        timeout: float | None = None,
        on_update: Callable[[JobDocument], None] | None = None,
        first: JobDocument | None = None,
    ) -> JobDocument:
        """Poll until SUCCESS; FAILED raises JobFailedError, the deadline JobTimeoutError.

        ``timeout`` is a hard deadline in seconds: a poll still retrying, a long
        Retry-After or a server that drips its answer ends with JobTimeoutError on time.
        ``first`` is a document already in hand (e.g. the one a start call returned).
        """
        return await wait_for_job(
            self,
            dock_status_id,
            policy=self.poll_policy,
            timeout=timeout,
            on_update=on_update,
            first=first,
        )
