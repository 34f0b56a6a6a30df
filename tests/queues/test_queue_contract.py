"""The queue backend contract (DESIGN 3.5), run over every implementation.

Every group of a queue receives every message; the readers of one group share
them; a message stays until acknowledged and comes back when requeued; ids are
published once; messages published before any group wait for the first one.
"""

from __future__ import annotations

import threading
import time

import pytest

from orchestrator.queues import Message, QueueBackend
from tests.queues.conftest import Brokers

pytestmark = pytest.mark.timeout(30)

WAIT_S = 2.0
"""Long enough for any broker to hand over a message that is there."""
EMPTY_S = 0.1
"""How long a test waits to conclude that nothing more is coming."""


def drain(backend: QueueBackend, queue: str, group: str, *, ack: bool = True) -> list[object]:
    """Every value waiting in ``group``, in delivery order."""
    values: list[object] = []
    while (message := backend.receive(queue, group, EMPTY_S)) is not None:
        values.append(message.value)
        if ack:
            backend.ack(queue, group, message.id)
    return values


def take(backend: QueueBackend, queue: str, group: str) -> Message:
    message = backend.receive(queue, group, WAIT_S)
    assert message is not None, f"nothing arrived in {queue}/{group}"
    return message


def test_a_message_is_received_once_and_gone_after_its_ack(brokers: Brokers) -> None:
    backend = brokers.make()
    backend.subscribe("q", "g")

    assert backend.publish("q", {"n": 1, "tags": ["a", None], "x": 0.5}, "m1") is True
    message = take(backend, "q", "g")
    backend.ack("q", "g", message.id)

    assert message.value == {"n": 1, "tags": ["a", None], "x": 0.5}
    assert backend.receive("q", "g", EMPTY_S) is None
    assert backend.depth("q", "g") == 0


def test_receive_waits_up_to_its_timeout_and_returns_none(brokers: Brokers) -> None:
    backend = brokers.make()
    backend.subscribe("q", "g")

    started = time.monotonic()
    assert backend.receive("q", "g", 0.2) is None
    assert time.monotonic() - started >= 0.19


def test_a_waiting_receive_gets_a_message_published_meanwhile(brokers: Brokers) -> None:
    backend, publisher = brokers.make(), brokers.make()
    backend.subscribe("q", "g")
    timer = threading.Timer(0.1, lambda: publisher.publish("q", "late", "m1"))
    timer.start()

    message = backend.receive("q", "g", WAIT_S)
    timer.join()

    assert message is not None and message.value == "late"


def test_every_group_receives_every_message(brokers: Brokers) -> None:
    backend = brokers.make()
    backend.subscribe("q", "a")
    backend.subscribe("q", "b")

    for n in range(5):
        backend.publish("q", n, f"m{n}")

    assert drain(backend, "q", "a") == [0, 1, 2, 3, 4]
    assert drain(backend, "q", "b") == [0, 1, 2, 3, 4]


def test_readers_of_one_group_share_its_messages_each_delivered_once(brokers: Brokers) -> None:
    first, second = brokers.make(), brokers.make()
    first.subscribe("q", "g")
    for n in range(6):
        first.publish("q", n, f"m{n}")

    got: dict[int, list[object]] = {0: [], 1: []}
    for turn in range(6):
        reader = (first, second)[turn % 2]
        message = take(reader, "q", "g")
        got[turn % 2].append(message.value)
        reader.ack("q", "g", message.id)

    assert got == {0: [0, 2, 4], 1: [1, 3, 5]}
    assert first.receive("q", "g", EMPTY_S) is None


def test_concurrent_readers_of_one_group_get_every_message_exactly_once(brokers: Brokers) -> None:
    publisher = brokers.make()
    publisher.subscribe("q", "g")
    for n in range(40):
        publisher.publish("q", n, f"m{n}")
    got: list[list[object]] = [[], [], []]
    shared = brokers.make()  # one backend may serve many reader threads
    readers = [shared, shared, brokers.make()]

    def read(k: int) -> None:
        got[k] = drain(readers[k], "q", "g")

    threads = [threading.Thread(target=read, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    everything = [v for values in got for v in values]
    assert sorted(everything) == list(range(40))  # type: ignore[type-var]


def test_a_repeated_message_id_is_published_once(brokers: Brokers) -> None:
    backend = brokers.make()
    backend.subscribe("q", "g")

    assert backend.publish("q", "first", "same") is True
    assert backend.publish("q", "second", "same") is False
    assert backend.publish("r", "other queue", "same") is True

    assert drain(backend, "q", "g") == ["first"]


def test_messages_published_before_any_group_wait_for_the_first_group(brokers: Brokers) -> None:
    backend = brokers.make()
    for n in range(3):
        backend.publish("q", n, f"m{n}")

    assert backend.depth("q") == 3
    backend.subscribe("q", "first")
    backend.subscribe("q", "later")
    backend.publish("q", 3, "m3")

    assert drain(backend, "q", "first") == [0, 1, 2, 3]
    assert drain(backend, "q", "later") == [3]


def test_a_reader_receiving_first_subscribes_its_group(brokers: Brokers) -> None:
    backend = brokers.make()
    backend.publish("q", "early", "m0")

    assert take(backend, "q", "g").value == "early"


def test_requeued_unacked_messages_come_back_first_and_in_order(brokers: Brokers) -> None:
    backend = brokers.make()
    backend.subscribe("q", "g")
    for n in range(4):
        backend.publish("q", n, f"m{n}")
    held = [take(backend, "q", "g"), take(backend, "q", "g")]

    assert backend.requeue_unacked("q", "g") == 2
    assert backend.requeue_unacked("q", "g") == 0
    backend.ack("q", "g", held[0].id)  # a stale delivery: harmless

    assert drain(backend, "q", "g") == [0, 1, 2, 3]


def test_requeue_touches_only_its_own_group(brokers: Brokers) -> None:
    backend = brokers.make()
    backend.subscribe("q", "a")
    backend.subscribe("q", "b")
    backend.publish("q", "x", "m0")
    take(backend, "q", "a")
    kept = take(backend, "q", "b")

    assert backend.requeue_unacked("q", "a") == 1
    backend.ack("q", "b", kept.id)

    assert drain(backend, "q", "a") == ["x"]
    assert drain(backend, "q", "b") == []


def test_depth_counts_waiting_messages_per_group(brokers: Brokers) -> None:
    backend = brokers.make()
    backend.subscribe("q", "a")
    backend.subscribe("q", "b")
    for n in range(3):
        backend.publish("q", n, f"m{n}")

    received = take(backend, "q", "a")

    assert backend.depth("q", "a") == 2
    assert backend.depth("q", "b") == 3
    assert backend.depth("q") == 3
    assert backend.depth("q", "unknown") == 0
    assert backend.depth("r") == 0
    assert backend.queues() == {"q": {"a": 2, "b": 3}}
    backend.ack("q", "a", received.id)
    assert backend.depth("q", "a") == 2


def test_a_message_received_in_one_thread_can_be_acked_in_another(brokers: Brokers) -> None:
    backend = brokers.make()
    backend.subscribe("q", "g")
    backend.publish("q", 1, "m1")
    message = take(backend, "q", "g")

    acker = threading.Thread(target=backend.ack, args=("q", "g", message.id))
    acker.start()
    acker.join()

    assert backend.requeue_unacked("q", "g") == 0
    assert backend.receive("q", "g", EMPTY_S) is None


def test_acknowledging_an_unknown_delivery_does_nothing(brokers: Brokers) -> None:
    backend = brokers.make()
    backend.subscribe("q", "g")
    backend.publish("q", 1, "m1")

    backend.ack("q", "g", "never-delivered")

    assert drain(backend, "q", "g") == [1]


def test_queues_and_groups_outlive_the_backend_that_made_them(brokers: Brokers) -> None:
    subscriber = brokers.make()
    subscriber.subscribe("q", "a")
    subscriber.subscribe("q", "b")
    publisher = brokers.make()  # a publisher in another process, or after a restart

    publisher.publish("q", "hello", "m1")
    reader = brokers.make()

    assert reader.depth("q", "a") == reader.depth("q", "b") == 1
    assert drain(reader, "q", "a") == ["hello"]
    assert drain(reader, "q", "b") == ["hello"]


def test_a_deleted_queue_is_gone_with_its_groups_and_messages(brokers: Brokers) -> None:
    backend = brokers.make()
    backend.subscribe("q", "g")
    backend.subscribe("r", "g")
    assert backend.publish("q", 1, "m1")
    backend.publish("r", 2, "m2")

    backend.delete("q")

    assert "q" not in backend.queues()
    assert backend.depth("q") == 0
    assert drain(backend, "r", "g") == [2]  # other queues keep theirs
    # A queue of that name starts afresh, without the old messages. (Published ids
    # may still be remembered until they expire: dedupe outlives the queue.)
    backend.subscribe("q", "g")
    assert backend.publish("q", 3, "m3")
    assert drain(backend, "q", "g") == [3]
