"""What a worker cannot run goes to the dead-letter queue, and the worker keeps serving.

A message on a worker's queue that is not a Segue node task is moved to
:data:`~orchestrator.celery.DEAD_LETTER_QUEUE` (``segue.dead``) with one log
line, and the original is acknowledged; nothing of it runs, and the next
message is served. Each kind is caught where it first shows:

* bytes that are not a kombu message at all (not UTF-8, not JSON, not the
  envelope kombu's Redis transport writes): :class:`DeadLetterTransport`, the
  Redis transport of a worker, which would otherwise let the decoding error
  stop the worker - and every worker started after it;
* a message Celery cannot take (no task name, a task no node type has, a body
  it cannot decode, a serializer other than JSON - pickle and YAML are never
  decoded): :class:`DeadLetterConsumer`, Celery's consumer with those hooks
  replaced, and any other error raised while a message is received;
* a Segue task whose argument is not a ``RunRequest``: :func:`dead_letter_task`,
  called by the task before it claims anything.

Each dead letter is a JSON object: ``reason``, ``queue`` (where it was taken
from), ``at``, ``worker``, ``body`` (as text, or base64 when it is not UTF-8,
with ``encoding`` saying which) and, where known, ``task``, ``id``,
``content_type``. Read them with any kombu consumer of ``segue.dead``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import socket
import time
from typing import Any

from celery import Celery
from celery.worker.consumer import Consumer
from kombu import Producer, Queue
from kombu.message import Message

from orchestrator.celery import DEAD_LETTER_QUEUE
from orchestrator.celery import transport as guarded

log = logging.getLogger("segue.worker")
DEAD_LETTERS = Queue(DEAD_LETTER_QUEUE, durable=True)
BODY_SHOWN = 200
"""Characters of a dead letter's body its log line shows."""


def dead_letter(
    reason: str, queue: str | None, body: bytes | str | None, **known: Any
) -> dict[str, Any]:
    """The dead-letter record of a message, its body kept as text or base64."""
    if isinstance(body, bytes):
        try:
            text, encoding = body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(body).decode("ascii"), "base64"
    else:
        text, encoding = ("" if body is None else str(body)), "utf-8"
    record = {
        "reason": reason,
        "queue": queue,
        "at": time.time(),
        "worker": socket.gethostname(),
        "body": text,
        "encoding": encoding,
        **{key: _jsonable(value) for key, value in known.items() if value is not None},
    }
    log.error(
        "moved a message from queue %s to %s: %s (body %.*r)",
        queue,
        DEAD_LETTER_QUEUE,
        reason,
        BODY_SHOWN,
        text,
    )
    return record


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=repr))


def publish(producer: Producer, record: dict[str, Any]) -> None:
    """Put ``record`` on the dead-letter queue (declared durable first)."""
    producer.publish(
        record,
        exchange="",
        routing_key=DEAD_LETTER_QUEUE,
        serializer="json",
        declare=[DEAD_LETTERS],
        delivery_mode=2,
    )


def publish_with(app: Celery, record: dict[str, Any]) -> None:
    """Put ``record`` on the dead-letter queue with a producer of ``app``'s pool."""
    with app.producer_or_acquire() as producer:
        publish(producer, record)


# Celery's consumer -------------------------------------------------------------------
class DeadLetterConsumer(Consumer):  # type: ignore[misc]
    """Celery's worker consumer, moving the messages it cannot take to the dead letters.

    Celery would log them with a traceback and reject them (dropped); an error it
    does not expect while receiving one would stop the worker.
    """

    def on_unknown_message(self, body: Any, message: Message) -> None:
        self._dead(message, "not a Celery task message (no task name)")

    def on_unknown_task(self, body: Any, message: Message, exc: BaseException) -> None:
        name = (message.headers or {}).get("task")
        self._dead(message, f"no node type runs task {name!r} here")

    def on_invalid_task(self, body: Any, message: Message, exc: BaseException) -> None:
        self._dead(message, f"invalid task message ({type(exc).__name__}: {exc})")

    def on_decode_error(self, message: Message, exc: BaseException) -> None:
        self._dead(message, f"undecodable task message ({type(exc).__name__}: {exc})")

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Any:
        handler = super().create_task_handler(*args, **kwargs)
        connection_errors = self.connection_errors

        def receive(message: Message) -> Any:
            try:
                return handler(message)
            except connection_errors:
                raise  # the consumer reconnects and the broker delivers it again
            except Exception as exc:
                self._dead(message, f"malformed task message ({type(exc).__name__}: {exc})")
                return None

        return receive

    def _dead(self, message: Message, reason: str) -> None:
        headers = message.headers if isinstance(message.headers, dict) else {}
        info = message.delivery_info if isinstance(message.delivery_info, dict) else {}
        record = dead_letter(
            reason,
            info.get("routing_key"),
            message.body,
            task=headers.get("task"),
            id=headers.get("id"),
            content_type=message.content_type,
        )
        publish_with(self.app, record)
        if not message.acknowledged:
            message.ack()


# the Redis transport ----------------------------------------------------------------
class DeadLetterChannel(guarded.Channel):
    """Segue's Redis channel (kombu's, with the reconnect guard of
    :mod:`orchestrator.celery.transport`), moving what is not a message envelope
    to the dead letters.

    The envelope is decoded right after ``BRPOP`` took it off the list, so a
    message that fails there is already off its queue: it only needs to be kept.
    """

    def _brpop_read(self, **options: Any) -> Any:
        try:
            return super()._brpop_read(**options)
        except json.JSONDecodeError as exc:
            self._dead("not JSON", self._last_queue(), exc.doc)
        except UnicodeDecodeError as exc:
            self._dead("not UTF-8 text", self._last_queue(), bytes(exc.object))
        return True

    def basic_consume(
        self, queue: str, no_ack: bool, callback: Any, consumer_tag: str, **kwargs: Any
    ) -> Any:
        tag = super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)
        deliver = self.connection._callbacks[queue]

        def checked(raw_message: Any) -> Any:
            problem = envelope_problem(raw_message)
            if problem is not None:
                self._dead(f"not a message envelope: {problem}", queue, json.dumps(raw_message))
                return None
            return deliver(raw_message)

        self.connection._callbacks[queue] = checked
        return tag

    def _last_queue(self) -> str | None:
        # BRPOP's queue is rotated to the end of the channel's cycle before decoding.
        items = getattr(self._queue_cycle, "items", None)
        return str(items[-1]) if items else None

    def _dead(self, reason: str, queue: str | None, body: bytes | str | None) -> None:
        publish(Producer(self), dead_letter(reason, queue, body))


class DeadLetterTransport(guarded.Transport):
    """Segue's Redis transport with :class:`DeadLetterChannel` (``rediss://`` too)."""

    Channel = DeadLetterChannel


def envelope_problem(raw: Any) -> str | None:
    """What keeps ``raw`` from being a kombu Redis message envelope, or ``None``."""
    if not isinstance(raw, dict):
        return f"a JSON {type(raw).__name__}, not an object"
    properties = raw.get("properties")
    if not isinstance(properties, dict) or "delivery_tag" not in properties:
        return "no properties.delivery_tag"
    info = properties.get("delivery_info")
    if not isinstance(info, dict) or not {"exchange", "routing_key"} <= info.keys():
        return "no properties.delivery_info with exchange and routing_key"
    if not isinstance(raw.get("headers") or {}, dict):
        return "headers is not an object"
    body, encoding = raw.get("body", ""), properties.get("body_encoding")
    if not isinstance(body, str | None) or encoding not in (None, "base64"):
        return "the body is not text, or its body_encoding is not base64"
    if encoding == "base64" and body:
        try:
            base64.b64decode(body, validate=True)
        except binascii.Error:
            return "the body is not valid base64"
    return None
