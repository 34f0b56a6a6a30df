"""The Redis queue backend at the points where a process may die (DESIGN 3.5).

A publish is one transaction: a publisher that dies in the middle leaves
nothing behind, and publishing again after a restart gives one message, not
two. Taking a message pops it and records it unacknowledged in one step: a
reader that dies as it gets it leaves it held, not lost. What a dead reader
held is listed (:meth:`KombuQueueBackend.orphans`) and settled
(:meth:`KombuQueueBackend.reclaim`): the messages its journal consumed are
acknowledged, the others go back to the head of the group in their order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.commands.core import Script

from orchestrator.queues import KombuQueueBackend
from tests.queues.conftest import Brokers, brokers_of

pytestmark = [pytest.mark.services, pytest.mark.timeout(30)]


class Died(BaseException):
    """The process died here (nothing after this point runs)."""


@pytest.fixture
def brokers() -> Iterator[Brokers]:
    yield from brokers_of("redis")


def drain(backend: KombuQueueBackend) -> list[Any]:
    values = []
    while (message := backend.receive("q", "g", 0.3)) is not None:
        values.append(message.value)
        backend.ack("q", "g", message.id)
    return values


def test_a_publisher_dying_after_its_push_publishes_once_when_it_tries_again(
    brokers: Brokers, monkeypatch: pytest.MonkeyPatch
) -> None:
    brokers.kombu().subscribe("q", "g")
    dying = brokers.kombu()
    lpush = redis.Redis.lpush

    def push_then_die(self: redis.Redis, *args: Any) -> Any:
        lpush(self, *args)
        raise Died

    with monkeypatch.context() as patch:
        patch.setattr(redis.Redis, "lpush", push_then_die)
        with pytest.raises(Died):
            dying.publish("q", "once", "m1")

    restarted = brokers.kombu()
    restarted.publish("q", "once", "m1")  # the run that published is run again

    assert drain(restarted) == ["once"]


def test_a_reader_dying_as_the_broker_hands_it_a_message_leaves_it_held(
    brokers: Brokers, monkeypatch: pytest.MonkeyPatch
) -> None:
    publisher = brokers.kombu()
    publisher.subscribe("q", "g")
    publisher.publish("q", "held", "m1")
    dying = brokers.kombu()
    dying.subscribe("q", "g")

    rpop, run = redis.Redis.rpop, Script.__call__

    def pop_then_die(self: redis.Redis, *args: Any, **kwargs: Any) -> Any:
        rpop(self, *args, **kwargs)
        raise Died

    def popping_script_then_die(self: Script, *args: Any, **kwargs: Any) -> Any:
        answer = run(self, *args, **kwargs)
        if "RPOP" in str(self.script):
            raise Died
        return answer

    with monkeypatch.context() as patch:
        # However the message is taken (a pop, or a script that pops), the reader
        # dies as soon as the broker answered.
        patch.setattr(redis.Redis, "rpop", pop_then_die)
        patch.setattr(Script, "__call__", popping_script_then_die)
        with pytest.raises(Died):
            dying.receive("q", "g", 2.0)

    successor = brokers.kombu()
    assert successor.orphans("q", "g") == ["m1"]  # held by the dead reader, not lost
    assert successor.reclaim("q", "g", consumed=set()) == 1
    assert drain(successor) == ["held"]


def test_what_a_dead_reader_held_is_acknowledged_if_consumed_else_given_back_first(
    brokers: Brokers,
) -> None:
    publisher = brokers.kombu()
    publisher.subscribe("q", "g")
    for i in range(1, 5):
        publisher.publish("q", i, f"m{i}")
    dead = brokers.kombu()  # receives three messages, acknowledges none, never returns
    assert [dead.receive("q", "g", 2.0).value for _ in range(3)] == [1, 2, 3]  # type: ignore[union-attr]

    successor = brokers.kombu()
    assert successor.orphans("q", "g") == ["m1", "m2", "m3"]  # oldest first
    assert successor.reclaim("q", "g", consumed={"m2"}) == 2  # m2's iteration is journaled

    assert successor.orphans("q", "g") == []
    assert drain(successor) == [1, 3, 4]  # m2 once only; the others in their order


def test_on_a_shared_queue_only_the_consumed_orphans_are_settled(brokers: Brokers) -> None:
    publisher = brokers.kombu()
    publisher.subscribe("q", "g")
    publisher.publish("q", 1, "m1")
    publisher.publish("q", 2, "m2")
    other = brokers.kombu()  # another reader of the group, perhaps alive
    assert [other.receive("q", "g", 2.0).value for _ in range(2)] == [1, 2]  # type: ignore[union-attr]

    successor = brokers.kombu()
    assert successor.reclaim("q", "g", consumed={"m1"}, give_back=False) == 0

    assert successor.orphans("q", "g") == ["m2"]  # still held by its reader
    assert successor.receive("q", "g", 0.3) is None


def test_a_reader_s_own_messages_are_not_orphans(brokers: Brokers) -> None:
    reader = brokers.kombu()
    reader.subscribe("q", "g")
    reader.publish("q", 1, "m1")
    held = reader.receive("q", "g", 2.0)

    assert held is not None and reader.orphans("q", "g") == []
    assert reader.reclaim("q", "g", consumed=set()) == 0
    reader.ack("q", "g", held.id)
    assert brokers.kombu().orphans("q", "g") == []
