"""kombu's Redis transport with a guard for a channel closed after its connection.

When a worker loses its Redis broker, Celery collects the broken connection
and then closes it. Collecting closes the connection's channels; closing the
remote-control channel (an auto-delete fanout queue) fails on the dead
socket, the channels after it stay open, and the transport lets go of its
kombu ``Connection`` all the same. Closing the connection then closes the task
channel, which gives its unacknowledged messages back through a new Redis pool
- and kombu builds the pool's parameters from the transport's ``Connection``,
now ``None``: ``AttributeError: 'NoneType' object has no attribute 'hostname'``
in ``Channel._connparams``. It is not a connection error, so Celery does not
catch it and the worker stops ("Unrecoverable error"). Late acknowledgements
of tasks delivered on that channel fail the same way, even once Redis is back.
It depends on timing (which channel's socket noticed the drop first), so a
restart stops some workers and not others. Upstream reports of the same
failure on other close paths: celery/kombu#582 ("Error on restarting
Gossip"), celery/kombu#970 ("Error on Restarting Celery").

Here a channel remembers the parameters it was opened with and uses them once
its transport has let go: giving messages back and late acknowledgements then
reach Redis when it is back, and fail with a connection error - which kombu
and Celery handle - while it is away.

Celery uses this transport for ``redis://`` brokers (``broker_transport`` in
:func:`~orchestrator.celery.app.make_celery`); ``rediss://`` keeps kombu's own,
which also sets up TLS from the scheme.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):  # type: ignore[misc]
    """A kombu Redis channel whose connection parameters outlive its transport's connection."""

    _opened_with: dict[bool, dict[str, Any]]

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        remembered = self.__dict__.setdefault("_opened_with", {})
        if self.connection.client is None:  # the connection was collected (see above)
            params = remembered.get(asynchronous)
            if params is None:
                raise redis.ConnectionError("the broker connection of this channel was closed")
            return dict(params)
        params = super()._connparams(asynchronous=asynchronous)
        remembered[asynchronous] = dict(params)
        return params  # type: ignore[no-any-return]


class Transport(kombu_redis.Transport):  # type: ignore[misc]
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel
