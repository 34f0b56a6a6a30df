"""At-least-once on real brokers: what a reader holds comes back when it is gone.

A reader killed with SIGKILL while it holds a message never acknowledges it:
RabbitMQ requeues it when the connection drops, Redis once the visibility
timeout has passed (DESIGN 10). A reader that closes gives its messages back
at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.queues import KombuQueueBackend
from orchestrator.queues.kombu_names import QueueNames
from tests.queues.conftest import Brokers

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[2]
READER = """
import sys, time
from orchestrator.queues import KombuQueueBackend
url, prefix = sys.argv[1], sys.argv[2]
backend = KombuQueueBackend(url, prefix, visibility_timeout_s=1.0)
message = backend.receive("q", "g", 10.0)
print(message.value if message else "NOTHING", flush=True)
time.sleep(60)
"""


def kill_a_reader_holding_one_message(brokers: Brokers) -> None:
    """A child process receives the one message of q/g without acking, then is SIGKILLed."""
    child = subprocess.Popen(
        [sys.executable, "-c", READER, brokers.url, brokers.prefix],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)


def test_a_message_held_by_a_killed_reader_is_delivered_again(kombu_brokers: Brokers) -> None:
    publisher = kombu_brokers.kombu()
    publisher.subscribe("q", "g")
    publisher.publish("q", "held", "m1")

    kill_a_reader_holding_one_message(kombu_brokers)
    # Redis: the message is back once 1 s (the visibility timeout) has passed.
    reader = kombu_brokers.kombu(visibility_timeout_s=1.0)
    message = reader.receive("q", "g", 10.0)

    assert message is not None and message.value == "held"
    reader.ack("q", "g", message.id)
    assert reader.receive("q", "g", 1.5) is None


def test_recover_gives_back_what_dead_readers_hold_without_waiting(
    kombu_brokers: Brokers,
) -> None:
    publisher = kombu_brokers.kombu()
    publisher.subscribe("q", "g")
    publisher.publish("q", "held", "m1")
    kill_a_reader_holding_one_message(kombu_brokers)

    restarted = kombu_brokers.kombu(visibility_timeout_s=3600.0)
    recovered = restarted.recover()
    message = restarted.receive("q", "g", 2.0)

    assert recovered == (1 if kombu_brokers.kind == "redis" else 0)
    assert message is not None and message.value == "held"


def test_a_closed_reader_gives_its_unacked_messages_back_at_once(kombu_brokers: Brokers) -> None:
    reader = kombu_brokers.kombu()
    reader.subscribe("q", "g")
    reader.publish("q", 1, "m1")
    reader.publish("q", 2, "m2")
    assert (held := reader.receive("q", "g", 2.0)) is not None and held.value == 1

    reader.close()
    successor = kombu_brokers.kombu()

    assert successor.depth("q", "g") == 2
    received = [successor.receive("q", "g", 2.0) for _ in range(2)]
    assert [m.value for m in received if m is not None] == [1, 2]


def test_deleting_a_queue_removes_its_groups_and_messages(kombu_brokers: Brokers) -> None:
    backend = kombu_brokers.kombu()
    backend.subscribe("q", "g")
    backend.subscribe("r", "g")
    backend.publish("q", 1, "m1")
    backend.publish("q", 2, "m2")
    assert backend.receive("q", "g", 2.0) is not None  # held while deleting

    backend.delete("q")

    assert backend.queues() == {"r": {"g": 0}}
    assert backend.depth("q") == 0
    backend.close()
    assert kombu_brokers.kombu().depth("q", "g") == 0


def test_on_redis_a_fresh_backend_lists_the_groups_others_subscribed(
    kombu_brokers: Brokers,
) -> None:
    if kombu_brokers.kind != "redis":
        pytest.skip("AMQP cannot list an exchange's bindings: queues() knows its own groups")
    kombu_brokers.kombu().subscribe("q", "a")
    kombu_brokers.kombu().subscribe("q", "b")

    assert kombu_brokers.kombu().queues() == {"q": {"a": 0, "b": 0}}


def test_a_closed_backend_says_so(kombu_brokers: Brokers) -> None:
    backend = kombu_brokers.kombu()
    backend.close()
    backend.close()

    with pytest.raises(RuntimeError, match="closed"):
        backend.publish("q", 1, "m1")


def test_values_must_be_json(kombu_brokers: Brokers) -> None:
    backend = kombu_brokers.kombu()

    with pytest.raises(TypeError, match="queue 'q': message 'm1' is not JSON-serialisable"):
        backend.publish("q", object(), "m1")


def test_names_with_dots_do_not_collide() -> None:
    names = QueueNames("p")

    assert names.group_queue("a.b", "c") != names.group_queue("a", "b.c")
    assert names.group_queue("job:q", "loop") == "p.job:q.loop"


def test_the_orphans_group_name_is_refused(kombu_brokers: Brokers) -> None:
    backend = kombu_brokers.kombu()

    with pytest.raises(ValueError, match="'__orphans__' is reserved"):
        backend.subscribe("q", "__orphans__")


def test_an_unsupported_url_is_refused() -> None:
    with pytest.raises(ValueError, match="use redis://"):
        KombuQueueBackend("sqs://example")
