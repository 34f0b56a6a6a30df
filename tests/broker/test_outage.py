"""Riding out a lost broker without services: the outage log, the outbox that keeps what
could not be sent, the channels' results and wake-ups, and the Celery executor's tasks."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from kombu.exceptions import OperationalError

from nodes.artifacts import MemoryArtifactStore
from nodes.library import builtin_registry
from orchestrator.celery import CeleryExecutor, make_celery
from orchestrator.channels import Channels
from orchestrator.errors import BrokerUnavailable
from orchestrator.outage import MAX_WAIT_S, Outage, Outbox, backoff
from orchestrator.runner import NodeRunner
from orchestrator.scheduler import Dispatch, Scheduler, Start
from orchestrator.settings import Settings
from tests.scheduler.scheduler_harness import plan_of

log = logging.getLogger("tests.outage")


class Broker:
    """A broker call that fails with ``ConnectionError`` while ``away`` is set."""

    def __init__(self) -> None:
        self.away = threading.Event()
        self.sent: list[Any] = []
        self.lock = threading.Lock()

    def send(self, item: Any) -> None:
        if self.away.is_set():
            raise ConnectionError("Connection refused")
        with self.lock:
            self.sent.append(item)


def _transient(error: BaseException) -> bool:
    return isinstance(error, ConnectionError)


def _eventually(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# backoff and the outage log ------------------------------------------------------------
def test_backoff_retries_at_once_then_doubles_up_to_two_seconds() -> None:
    waits = [backoff(tries) for tries in range(1, 9)]
    assert waits[:4] == [0.0, 0.1, 0.2, 0.4]
    assert waits == sorted(waits) and max(waits) == MAX_WAIT_S


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    outage = Outage("the broker at redis://h/0", log, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="tests.outage"):
        for _ in range(5):
            outage.failed(ConnectionError("Connection refused\nsecond line"), "reading results")
            now[0] += 4.0
        outage.ok()
        outage.ok()
    assert [r.getMessage() for r in caplog.records] == [
        "lost the broker at redis://h/0 while reading results (ConnectionError: Connection "
        "refused); retrying with backoff until it returns",
        "the broker at redis://h/0 is back after 20.0 s",
    ]
    assert not outage.down


# the outbox ----------------------------------------------------------------------------
def test_what_the_broker_cannot_take_is_kept_and_sent_in_order_when_it_returns() -> None:
    broker = Broker()
    outbox: Outbox[int] = Outbox(broker.send, _transient, Outage("the broker", log))
    outbox.send(1)
    broker.away.set()
    for item in (2, 3, 4):
        outbox.send(item)  # never raises while the broker is away
    assert outbox.kept == 3
    broker.away.clear()
    outbox.send(5)  # after the kept ones, not before
    assert outbox.flush(timeout=10) == 0
    assert broker.sent == [1, 2, 3, 4, 5]
    outbox.close(0)


def test_a_full_outbox_refuses_more_with_one_warning_per_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = Broker()
    broker.away.set()
    outbox: Outbox[int] = Outbox(broker.send, _transient, Outage("the broker", log), limit=2)
    with caplog.at_level(logging.WARNING, logger="tests.outage"):
        outbox.send(1)
        outbox.send(2)
        for item in (3, 4):
            with pytest.raises(BrokerUnavailable, match="2 items wait for it already"):
                outbox.send(item)
    full = [r for r in caplog.records if "the most kept" in r.getMessage()]
    assert len(full) == 1
    broker.away.clear()
    assert outbox.flush(timeout=10) == 0
    assert broker.sent == [1, 2]
    outbox.close(0)


def test_an_error_that_is_not_an_outage_reaches_the_sender() -> None:
    def refuse(item: int) -> None:
        raise ValueError("too big")

    outbox: Outbox[int] = Outbox(refuse, _transient, Outage("the broker", log))
    with pytest.raises(ValueError, match="too big"):
        outbox.send(1)
    assert outbox.kept == 0


def test_closing_says_how_many_items_never_left() -> None:
    broker = Broker()
    broker.away.set()
    outbox: Outbox[int] = Outbox(broker.send, _transient, Outage("the broker", log))
    outbox.send(1)
    assert outbox.close(timeout=0.1) == 1


# channels ------------------------------------------------------------------------------
class FlakyTransport:
    """A memory transport's stand-in whose publishing fails while ``broker.away`` is set."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def transient(self, error: BaseException) -> bool:
        return _transient(error)

    def publish_result(self, queue: str, body: dict[str, Any]) -> None:
        self.broker.send((queue, body))

    def publish_control(self, body: dict[str, Any]) -> None:
        self.broker.send(("control", body))

    def close(self) -> None:
        pass


def _flaky_channels(broker: Broker) -> Channels:
    channels = Channels("memory://outage-test")
    channels._transport = FlakyTransport(broker)  # type: ignore[assignment]
    return channels


def test_a_result_published_while_the_broker_is_away_is_sent_when_it_returns() -> None:
    broker = Broker()
    channels = _flaky_channels(broker)
    broker.away.set()
    channels.publish_result("job", {"run_id": "job:main:0:a", "status": "succeeded"})
    assert channels.kept == 1 and broker.sent == []
    broker.away.clear()
    _eventually(lambda: broker.sent)
    assert broker.sent == [("segue.results.job", {"run_id": "job:main:0:a", "status": "succeeded"})]
    channels.close()


def test_a_wake_up_the_broker_cannot_take_is_dropped_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = Broker()
    channels = _flaky_channels(broker)
    broker.away.set()
    with caplog.at_level(logging.WARNING, logger="segue.broker"):
        channels.publish_control({"kind": "submit", "job": "j1"})
        channels.publish_control({"kind": "submit", "job": "j2"})
    assert len([r for r in caplog.records if "find the request in the store" in r.message]) == 1
    assert channels.kept == 0
    channels.close()


# the Celery executor -------------------------------------------------------------------
class FlakyExecutor(CeleryExecutor):
    """Publishes into ``broker`` instead of Celery's producer."""

    broker: Broker

    def _publish(self, remote: list[Dispatch]) -> None:
        for dispatch in remote:
            self._send_again(dispatch)

    def _send_again(self, dispatch: Dispatch) -> None:
        if self.broker.away.is_set():
            raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        self.broker.sent.append(dispatch)


def _dispatches() -> list[Dispatch]:
    plan = plan_of(
        """
        name: fan
        nodes:
          - {id: a, type: Constant, config: {value: 1}}
          - {id: b, type: Constant, config: {value: 2}}
          - {id: c, type: Constant, config: {value: 3}}
        edges: []
        """
    )
    commands = Scheduler("job", plan, {}).handle(Start(), 0.0)
    return [c for c in commands if isinstance(c, Dispatch)]


def test_tasks_the_broker_cannot_take_wait_and_go_out_in_order_marked_resent() -> None:
    broker = Broker()
    app = make_celery(Settings(broker_url="memory://"))
    runner = NodeRunner(builtin_registry(), MemoryArtifactStore())
    executor = FlakyExecutor(app, runner, lambda _: None)
    executor.broker = broker
    first, second, third = _dispatches()
    broker.away.set()
    assert executor.submit([first, second]) == []  # the driver's thread does not wait
    executor.submit([third])
    assert broker.sent == []
    broker.away.clear()
    _eventually(lambda: len(broker.sent) == 3)
    assert [d.run_id for d in broker.sent] == [first.run_id, second.run_id, third.run_id]
    assert all(d.resent for d in broker.sent)  # a worker claims them before it runs them
    executor.close()
