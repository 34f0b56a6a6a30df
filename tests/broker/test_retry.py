"""The one retry policy of broker calls, and the connections opened with it."""

from __future__ import annotations

import pytest

from orchestrator import broker


class Flaky:
    """A broker call that fails ``failures`` times with ``error``, then answers."""

    def __init__(self, failures: int, error: type[Exception] = ConnectionError) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"failure {self.calls}")
        return "answer"


def test_a_transient_error_reconnects_and_retries_at_once_then_backs_off() -> None:
    call, reconnected, slept = Flaky(failures=3), [], []

    answer = broker.retry_call(call, (ConnectionError,), reconnected.append, sleep=slept.append)

    assert answer == "answer"
    assert call.calls == 4
    assert [str(e) for e in reconnected] == ["failure 1", "failure 2", "failure 3"]
    assert slept == [broker.FIRST_WAIT_S, 2 * broker.FIRST_WAIT_S]


def test_an_error_that_is_not_transient_reaches_the_caller_untried() -> None:
    call, reconnected = Flaky(failures=1, error=ValueError), []

    with pytest.raises(ValueError, match="failure 1"):
        broker.retry_call(call, (ConnectionError,), reconnected.append, sleep=lambda _: None)

    assert call.calls == 1
    assert reconnected == []


def test_the_last_error_is_raised_once_the_retries_are_spent() -> None:
    call, slept = Flaky(failures=100), []

    with pytest.raises(ConnectionError, match=f"failure {broker.RETRIES + 1}"):
        broker.retry_call(call, (ConnectionError,), lambda _: None, sleep=slept.append)

    assert call.calls == broker.RETRIES + 1
    assert max(slept) == broker.MAX_WAIT_S
    assert slept == sorted(slept)


def test_a_redis_client_retries_per_the_policy_unless_told_not_to() -> None:
    client = broker.redis_client("redis://127.0.0.1:6379/0")
    quiet = broker.redis_client("redis://127.0.0.1:6379/0", retries=0)

    assert client.get_retry()._retries == broker.RETRIES
    assert quiet.get_retry()._retries == 0
    client.close()
    quiet.close()


def test_a_kombu_connection_sends_no_heartbeats_and_keeps_its_options() -> None:
    connection = broker.kombu_connection("amqp://guest:guest@127.0.0.1:5672//", {"x": 1})

    assert connection.heartbeat == 0
    assert connection.transport_options == {"x": 1}
