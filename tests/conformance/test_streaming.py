"""DESIGN 3.14 and section 6: streams (`Stream[T]` ports, `Tokens`, `Join`) on
every executor - consumers overlap producers, chunks come in order as live
events, early close, restarts and failures of a producer, cancel."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from orchestrator import Workflow

if TYPE_CHECKING:
    from tests.support.harness import Harness

pytestmark = pytest.mark.timeout(90)

WORDS = "the quick brown fox jumps over the lazy dog"


def _pipeline(
    executor: Harness,
    producer: str = "Tokens",
    producer_config: dict[str, Any] | None = None,
    take: int | None = None,
    retry: dict[str, Any] | None = None,
    pool: str | None = None,
    items: list[str] | None = None,
) -> Workflow:
    """text -> producer -> Take -> Join -> Output, with the producer's tokens as an
    Output too (the accumulated value). With ``pool`` it runs as a loop over ``items``."""
    b = executor.builder("stream")
    if pool is None:
        text = b.node("text", "Constant", config={"value": WORDS})["value"]
    else:
        text = b.node("text", "Items", config={"items": items or [WORDS]})["item"]
    tokens = b.node("tokens", producer, config=producer_config or {}, retry=retry)
    take = b.node("take", "Take", config={} if take is None else {"count": take})
    join = b.node("join", "Join")
    out = b.node("out", "Output", config={"name": "text"})
    whole = b.node("whole", "Output", config={"name": "tokens"})
    b.edge(text, tokens["text"]).edge(tokens["token"], take["items"])
    b.edge(take["items"], join["tokens"]).edge(join["text"], out["value"])
    b.edge(tokens["token"], whole["value"])
    if pool is not None:
        b.loop("text", pool=pool)
    return b.build()


def test_a_token_stream_passes_through_a_streaming_consumer_and_joins_back(
    executor: Harness,
) -> None:
    job = executor.submit(_pipeline(executor))

    result = job.wait(timeout=30)

    assert result.status == "completed", result.error
    # joining the chunks gives the text back; a non-stream input gets the accumulated value
    assert result.outputs == {"text": WORDS, "tokens": WORDS}
    [tokens] = executor.runs_of(job, "tokens")
    assert tokens.outputs == {"token": WORDS}  # the recorded output is the accumulated value


def test_chunks_are_live_events_in_order_with_port_and_index(executor: Harness) -> None:
    job = executor.submit(_pipeline(executor))
    job.wait(timeout=30)

    chunks: dict[str, list[Any]] = {"tokens": [], "take": []}
    for event in job.events():
        if event.kind == "chunk":
            assert event.run_id and event.data["port"] in ("token", "items")
            assert event.data["index"] == len(chunks[event.node])  # no gap, no repeat
            chunks[event.node].extend(event.data["values"])
    assert chunks["tokens"] == chunks["take"] == [w + " " for w in WORDS.split()[:-1]] + ["dog"]


def test_a_consumer_starts_on_the_first_chunk_and_overlaps_its_producer(
    executor: Harness,
) -> None:
    job = executor.submit(_pipeline(executor, producer_config={"interval_s": 0.1}))

    result = job.wait(timeout=30)

    assert result.status == "completed", result.error
    [tokens] = executor.runs_of(job, "tokens")
    [take] = executor.runs_of(job, "take")
    [join] = executor.runs_of(job, "join")
    assert tokens.finished_at is not None and take.started_at is not None
    assert join.started_at is not None
    # the 9 tokens take 0.8 s to come: both consumers ran while they came
    assert take.started_at < tokens.finished_at - 0.5
    assert join.started_at < tokens.finished_at - 0.5
    assert result.outputs["text"] == WORDS


@pytest.mark.parametrize("pool", ["thread", "asyncio", "process"])
def test_streams_run_in_every_pool(executor: Harness, pool: str) -> None:
    items = ["one two three", "four five", "six"]
    job = executor.submit(_pipeline(executor, pool=pool, items=items))

    result = job.wait(timeout=60)

    assert result.status == "completed", result.error
    assert result.outputs == {"text": items, "tokens": items}


def test_a_consumer_that_stops_early_closes_its_producer(executor: Harness) -> None:
    long_text = " ".join(f"w{i}" for i in range(400))
    workflow = _pipeline(executor, producer_config={"interval_s": 0.02}, take=2)
    workflow = Workflow.model_validate(
        {
            **workflow.model_dump(mode="json", exclude_none=True),
            "nodes": [
                n if n["id"] != "text" else {**n, "config": {"value": long_text}}
                for n in workflow.model_dump(mode="json", exclude_none=True)["nodes"]
            ],
        }
    )
    started = time.monotonic()

    result = executor.submit(workflow).wait(timeout=30)

    assert result.status == "completed", result.error
    assert result.outputs["text"] == "w0 w1 "
    # 400 tokens would take 8 s: the producer stopped soon after the consumer did
    assert time.monotonic() - started < 6
    assert len(result.outputs["tokens"]) < len(long_text) // 2


def test_a_retried_producer_restarts_its_stream_and_consumers_see_a_restart(
    executor: Harness,
) -> None:
    workflow = _pipeline(
        executor,
        producer="FlakyStream",
        producer_config={"fail_after": 3, "fail_times": 1},
        retry={"attempts": 2},
    )
    job = executor.submit(workflow)

    result = job.wait(timeout=30)

    assert result.status == "completed", result.error
    assert result.outputs == {"text": WORDS, "tokens": WORDS}  # not the 3 tokens twice
    restarts = [e for e in job.events() if e.kind == "restart"]
    # the direct consumer restarts, and so does its own consumer (its stream restarted)
    assert {e.node for e in restarts} == {"take", "join"}
    [tokens] = executor.runs_of(job, "tokens")
    assert tokens.attempt == 2


def test_a_producer_that_fails_for_good_fails_its_consumers_never_truncates(
    executor: Harness,
) -> None:
    workflow = _pipeline(
        executor, producer="FlakyStream", producer_config={"fail_after": 3, "fail_times": 1}
    )
    job = executor.submit(workflow)

    result = job.wait(timeout=30)

    assert result.status == "failed"
    [take] = executor.runs_of(job, "take")
    assert take.status == "failed"
    assert "stream input 'items': its producer failed" in (take.error or "")
    assert "FlakyStream" in (take.error or "")
    assert "text" not in result.outputs or result.outputs["text"] is None


def test_cancelling_a_job_ends_its_streams(executor: Harness) -> None:
    workflow = _pipeline(executor, producer_config={"interval_s": 0.05})
    words = " ".join(f"w{i}" for i in range(400))
    data = workflow.model_dump(mode="json", exclude_none=True)
    for node in data["nodes"]:
        if node["id"] == "text":
            node["config"] = {"value": words}
    job = executor.submit(Workflow.model_validate(data))
    executor.await_event(job, lambda e: e.kind == "chunk" and e.node == "take")

    job.cancel()
    result = job.wait(timeout=20)

    assert result.status == "cancelled"


def test_a_stream_over_a_feedback_edge_carries_the_accumulated_value(executor: Harness) -> None:
    workflow = executor.load(
        """
        name: stream-feedback
        nodes:
          - {id: texts, type: Items, config: {items: ["a b", "a b", "c"]}}
          - {id: tok, type: Tokens}
          - {id: join, type: Join}
          - {id: same, type: Compare, config: {op: eq}}
          - {id: out, type: Output, config: {name: same}}
        edges:
          - {from: texts.item, to: tok.text}
          - {from: tok.token, to: join.tokens}
          - {from: join.text, to: same.a}
          - {from: tok.token, to: same.b, feedback: true, initial: ""}
          - {from: same.result, to: out.value}
        """
    )

    result = executor.run(workflow)

    assert result.status == "completed", result.error
    # each iteration compares its text with the previous iteration's whole stream
    assert result.outputs == {"same": [False, True, False]}


def test_the_stream_channels_of_a_job_are_gone_when_it_ends(executor: Harness) -> None:
    result = executor.run(_pipeline(executor))
    cancelled = executor.submit(_pipeline(executor, producer_config={"interval_s": 0.5}))
    executor.await_event(cancelled, lambda e: e.kind == "chunk" and e.node == "take")
    cancelled.cancel()

    assert cancelled.wait(timeout=20).status == "cancelled"
    assert result.status == "completed"
    assert executor.open_stream_channels(result.job) == 0
    assert executor.open_stream_channels(cancelled.id) == 0


def test_a_paused_loop_finishes_the_stream_in_flight_and_resumes_with_the_next(
    executor: Harness,
) -> None:
    items = ["one two three four", "five six", "seven"]
    job = executor.submit(
        _pipeline(executor, producer_config={"interval_s": 0.05}, pool="thread", items=items)
    )
    executor.await_event(job, lambda e: e.kind == "chunk" and e.node == "take")

    executor.client.pause_loop(job.id, "text")
    executor.await_loop(job, "text", "paused")
    paused = executor.loop_info(job, "text")
    # the iteration whose stream was running finished whole before the loop paused
    assert paused.iterations >= 1
    done = [r for r in executor.runs_of(job, "join", "text") if r.status == "succeeded"]
    assert [r.outputs["text"] for r in done] == items[: len(done)]
    executor.client.resume_loop(job.id, "text")

    result = job.wait(timeout=30)
    assert result.status == "completed", result.error
    assert result.outputs == {"text": items, "tokens": items}
