"""SyncKoreClient: the async KoreClient driven from blocking code (scripts, notebooks).

How it works: ``with SyncKoreClient(...)`` starts an event loop in a thread of its own
(an anyio blocking portal) and builds a :class:`~kore_models.KoreClient` there with the
same arguments. Every attribute is then proxied, generically: a method that returns an
awaitable blocks until it is done, a method that returns an async iterator becomes an
iterator, and an object with methods (``kore.models``) is proxied the same way. No method
is written twice, so the two clients cannot drift apart. Because the loop is in its own
thread, the client also works where a loop already runs (Jupyter, an async test).

Callbacks such as ``on_progress`` run in the client's thread. Ctrl-C while a call blocks
cancels it there, the same way it cancels an ``async`` call: an import keeps its journal.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from concurrent.futures import wait
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from .client import KoreClient

__all__ = ["SyncKoreClient"]

_PLAIN = (str, bytes, int, float, bool, type(None))
_WAKE_SECONDS = 0.2


def _has_async_methods(value: Any) -> bool:
    """Whether ``value`` is a namespace worth proxying (it has public coroutine methods)."""
    if isinstance(value, _PLAIN) or inspect.isroutine(value) or isinstance(value, type):
        return False
    return any(
        inspect.iscoroutinefunction(getattr(type(value), name, None))
        for name in dir(type(value))
        if not name.startswith("_")
    )


class _SyncIterator(Iterator[Any]):
    """An async iterator of the client's loop, consumed from blocking code."""

    def __init__(self, portal: BlockingPortal, iterator: Any):
        self._portal = portal
        self._iterator = iterator

    def __iter__(self) -> _SyncIterator:
        return self

    def __next__(self) -> Any:
        async def step() -> tuple[bool, Any]:
            try:
                return True, await self._iterator.__anext__()
            except StopAsyncIteration:
                return False, None

        more, value = _call(self._portal, step)
        if not more:
            raise StopIteration
        return value

    def close(self) -> None:
        """Close the async iterator (its ``aclose``), e.g. to stop a watch early."""
        closer = getattr(self._iterator, "aclose", None)
        if closer is not None:
            self._portal.call(closer)


class _SyncProxy:
    """Blocking view of one object that lives on the client's loop."""

    def __init__(self, portal: BlockingPortal, target: Any):
        self._portal = portal
        self._target = target

    def __repr__(self) -> str:
        return f"Sync({self._target!r})"

    def __dir__(self) -> list[str]:
        return [name for name in dir(self._target) if not name.startswith("_")]

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if callable(value) and not isinstance(value, type):
            return self._blocking(value)
        return _wrap(self._portal, value)

    def _blocking(self, function: Callable[..., Any]) -> Callable[..., Any]:
        portal = self._portal

        async def run(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            result = function(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result

        def call(*args: Any, **kwargs: Any) -> Any:
            return _wrap(portal, _call(portal, run, args, kwargs))

        call.__name__ = getattr(function, "__name__", "call")
        call.__doc__ = getattr(function, "__doc__", None)
        return call


def _call(portal: BlockingPortal, function: Callable[..., Any], *args: Any) -> Any:
    """``portal.call``, but Ctrl-C in the caller's thread cancels the task on the loop."""
    future = portal.start_task_soon(function, *args)
    try:
        while True:
            # short waits: a signal (Ctrl-C) is only handled when this thread runs Python code
            done, _ = wait([future], timeout=_WAKE_SECONDS)
            if done:
                return future.result()
    except BaseException:
        future.cancel()  # a no-op when the task already ended
        raise


def _wrap(portal: BlockingPortal, value: Any) -> Any:
    if hasattr(value, "__anext__"):
        return _SyncIterator(portal, value)
    if _has_async_methods(value):
        return _SyncProxy(portal, value)
    return value


class SyncKoreClient:
    """Blocking twin of :class:`~kore_models.KoreClient`; takes the same arguments.

    Example::

        from kore_models import SyncKoreClient

        with SyncKoreClient(host="https://agent-platform.kore.ai", api_key=key) as kore:
            result = kore.models.import_file("llama.tar")
            job = kore.dock_status.get(result.dock_status_id)
            for doc in kore.dock_status.watch(job.dock_status_id):
                print(doc.status)

    ``kore.files``, ``kore.models`` and ``kore.dock_status`` have every method of the async
    namespaces, blocking; ``kore.settings`` is the async client's settings.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = args
        self._kwargs = kwargs
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._client: KoreClient | None = None
        self._proxy: _SyncProxy | None = None

    def __repr__(self) -> str:
        state = "open" if self._client is not None else "not open"
        return f"SyncKoreClient({state})"

    def open(self) -> SyncKoreClient:
        """Start the client's thread and build the async client (``with`` does this)."""
        if self._client is not None:
            return self
        portal_cm = start_blocking_portal()
        portal = portal_cm.__enter__()
        try:
            client = portal.call(lambda: KoreClient(*self._args, **self._kwargs))
            portal.call(client.__aenter__)
        except BaseException as exc:
            portal_cm.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._portal_cm, self._portal, self._client = portal_cm, portal, client
        self._proxy = _SyncProxy(portal, client)
        return self

    def close(self) -> None:
        """Close the async client and stop the thread (idempotent)."""
        self._shut(None, None, None)

    def _shut(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        portal_cm, portal, client = self._portal_cm, self._portal, self._client
        self._portal_cm = self._portal = self._client = self._proxy = None
        if portal_cm is None or portal is None or client is None:
            return
        try:
            portal.call(client.aclose)
        finally:
            # with an error (Ctrl-C too) the portal cancels what still runs, then stops
            portal_cm.__exit__(exc_type, exc, tb)

    def __enter__(self) -> SyncKoreClient:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._shut(exc_type, exc, tb)

    def __dir__(self) -> list[str]:
        names = {n for n in dir(type(self)) if not n.startswith("_")}
        proxy = self.__dict__.get("_proxy")
        return sorted(names | set(dir(proxy) if proxy is not None else ()))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        proxy = self.__dict__.get("_proxy")
        if proxy is None:
            raise RuntimeError("the SyncKoreClient is not open; use it as `with SyncKoreClient()`")
        return getattr(proxy, name)
