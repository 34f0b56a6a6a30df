"""Retry waits as a pure function of the policy and the attempt."""

from __future__ import annotations

from orchestrator.model.spec import RetryPolicy


def retry_delay(policy: RetryPolicy, failed_attempt: int) -> float:
    """Seconds to wait after attempt ``failed_attempt`` (1-based) failed.

    ``backoff_s * multiplier**(failed_attempt - 1)``, capped at ``max_backoff_s``.
    """
    if policy.backoff_s <= 0:
        return 0.0
    delay = policy.backoff_s * policy.multiplier ** max(0, failed_attempt - 1)
    return min(delay, policy.max_backoff_s)


def attempts_left(policy: RetryPolicy, failed_attempt: int) -> bool:
    """Whether another attempt follows attempt ``failed_attempt``."""
    return failed_attempt < policy.attempts
