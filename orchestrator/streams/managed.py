"""Stream channels between process-pool children (embedded mode).

The channels live in a small server process (a :mod:`multiprocessing`
manager, spawned the first time a streaming run goes to the process pool);
children reach it through proxies, one round trip per message. The bound and
the order are the in-process channels' own (:class:`MemoryStreamHub` runs in
the server).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from multiprocessing.managers import BaseManager
from typing import Any

from orchestrator.streams.channels import EMBEDDED_BOUND, MemoryStreamHub, Message, StreamGone

_served: MemoryStreamHub | None = None


class _Served:
    """What the server exposes: channel operations by key."""

    def __init__(self) -> None:
        self.hub = MemoryStreamHub(EMBEDDED_BOUND)

    def put(self, key: str, message: Message) -> bool:
        return self.hub.writer(key).put(message)

    def get(self, key: str) -> Message | None:
        try:
            return self.hub.reader(key).get()
        except StreamGone:
            return None

    def close(self, key: str) -> None:
        self.hub.reader(key).close()

    def end_job(self, job_id: str) -> None:
        self.hub.end_job(job_id)


_instance: _Served | None = None


def _serve() -> _Served:
    global _instance
    if _instance is None:
        _instance = _Served()
    return _instance


class _Manager(BaseManager):
    pass


_Manager.register("channels", callable=_serve)


class _Proxied:
    """One end of a channel in the server (both ends share the class)."""

    def __init__(self, hub: ManagedStreamHub, key: str) -> None:
        self._hub = hub
        self._key = key

    def put(self, message: Message) -> bool:
        return bool(self._hub.remote().put(self._key, message))

    async def aput(self, message: Message) -> bool:
        return await asyncio.to_thread(self.put, message)

    def get(self) -> Message:
        message = self._hub.remote().get(self._key)
        if message is None:
            raise StreamGone("the job ended while the stream was read")
        return tuple(message)

    async def aget(self) -> Message:
        return await asyncio.to_thread(self.get)

    def close(self) -> None:
        self._hub.remote().close(self._key)


class ManagedStreamHub:
    """Channels in a manager process, usable from any process that knows its address.

    Built in the parent with :meth:`start`; a child builds one with
    :meth:`connect` from the parent's :attr:`address` (the authentication key
    is the one spawned children inherit).
    """

    def __init__(self, manager: _Manager) -> None:
        self._manager = manager
        self._local = threading.local()

    @classmethod
    def start(cls) -> ManagedStreamHub:
        """Spawn the server process."""
        manager = _Manager(ctx=multiprocessing.get_context("spawn"))
        manager.start()
        return cls(manager)

    @classmethod
    def connect(cls, address: Any) -> ManagedStreamHub:
        """Reach the server at ``address`` (in a child)."""
        manager = _Manager(address=address)
        manager.connect()
        return cls(manager)

    @property
    def address(self) -> Any:
        return self._manager.address

    def remote(self) -> Any:
        """This thread's proxy of the served channels."""
        proxy = getattr(self._local, "proxy", None)
        if proxy is None:
            proxy = self._local.proxy = self._manager.channels()  # type: ignore[attr-defined]
        return proxy

    def writer(self, key: str) -> _Proxied:
        return _Proxied(self, key)

    def reader(self, key: str) -> _Proxied:
        return _Proxied(self, key)

    def end_job(self, job_id: str) -> None:
        self.remote().end_job(job_id)

    def shutdown(self) -> None:
        """Stop the server (the parent, when its pool closes)."""
        self._manager.shutdown()
