"""Delivering a reply's parts through Evolution: what one attempt's outcome leads to.

A part that could not be delivered stays owed in PostgreSQL with a durable `next_attempt_at`, so
retries survive any restart. The rules here are pure (the clock and the jitter are passed in):

- a failure that sent nothing (Evolution unreachable, 5xx, 429) is retried after an exponential
  backoff with jitter, like dramatiq's `compute_backoff`;
- a send whose outcome is unknown (timeout, connection reset after the request was written) is
  not resent blindly: it waits `echo_window_s` for Evolution's echo of it, which confirms it;
- a refusal (other 4xx) is not retried: sending the same request again cannot help;
- a part is given up (dead-lettered, FALHOU) once it has been owed for `max_age_s`, after
  `max_attempts` sends, or after `max_unconfirmed` sends whose outcome stayed unknown (each of
  those may have reached the customer: sending again risks another copy); an operator can
  re-send it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from engine.core.statuses import MessageStatus


class SendOutcome(StrEnum):
    """What one sendText attempt came to."""

    DELIVERED = "delivered"  # Evolution accepted it (2xx)
    UNKNOWN = "unknown"  # it may have reached Evolution, but the answer was lost
    RETRYABLE = "retryable"  # nothing was sent: Evolution unreachable, or answered 5xx / 429
    REFUSED = "refused"  # Evolution refused it (4xx): the same request would be refused again


@dataclass(frozen=True)
class RetryPolicy:
    backoff_base_s: float  # wait before the second attempt
    backoff_max_s: float  # longest wait between two attempts
    max_attempts: int  # sends of one part before it is given up
    max_age_s: float  # a part owed longer than this is given up
    echo_window_s: float  # how long an unknown outcome waits for the echo
    max_unconfirmed: int = 3  # sends with an unknown outcome (no answer, no echo) before giving up

    def __post_init__(self) -> None:
        if self.backoff_base_s <= 0 or self.backoff_max_s < self.backoff_base_s:
            raise ValueError("need 0 < backoff_base_s <= backoff_max_s")
        if min(self.max_attempts, self.max_unconfirmed) < 1:
            raise ValueError("max_attempts and max_unconfirmed must be >= 1")
        if self.max_age_s <= 0 or self.echo_window_s <= 0:
            raise ValueError("max_age_s and echo_window_s must be positive")


def compute_backoff_s(attempts: int, *, base_s: float, max_s: float, jitter: float) -> float:
    """The wait after the `attempts`-th failed attempt: `base_s` doubled per earlier attempt,
    capped at `max_s`, then "equal jitter": between half of it and all of it (`jitter` in
    [0, 1)), so retries of many parts that failed together do not come back together."""
    if attempts < 1:
        raise ValueError("attempts counts from 1")
    if not 0.0 <= jitter < 1.0:
        raise ValueError("jitter must be in [0, 1)")
    exponent = min(attempts - 1, 32)  # 2**32 × base is past any cap; keeps the float finite
    backoff = min(max_s, base_s * 2**exponent)
    return backoff / 2 + backoff / 2 * jitter


@dataclass(frozen=True)
class NextStep:
    """What to record for a part after an attempt."""

    status: MessageStatus  # ENVIADA, PENDENTE (retry), INCERTA (wait for the echo) or FALHOU
    retry_in_s: float | None = None  # PENDENTE / INCERTA: the next attempt is due after this
    reason: str | None = None  # FALHOU: why it was given up (shown to operators)


def give_up_reason(
    *, attempts: int, owed_s: float, policy: RetryPolicy, unconfirmed: int = 0
) -> str | None:
    """Why a part must not be sent again (None: it may be): `attempts` sends already made, of
    which `unconfirmed` had an unknown outcome that no echo confirmed; owed for `owed_s`."""
    if unconfirmed >= policy.max_unconfirmed:
        return (
            f"sent {unconfirmed} times without Evolution answering or echoing it: it may have "
            "reached the customer; check before re-sending"
        )
    if attempts >= policy.max_attempts:
        return f"not delivered after {attempts} attempts"
    if owed_s >= policy.max_age_s:
        return f"still not delivered after {owed_s:.0f} s (SEND_RETRY_MAX_S)"
    return None


def after_attempt(
    outcome: SendOutcome,
    *,
    attempts: int,
    owed_s: float,
    policy: RetryPolicy,
    jitter: float,
    error: str | None = None,
) -> NextStep:
    """The part's next state after its `attempts`-th send came to `outcome`."""
    if outcome is SendOutcome.DELIVERED:
        return NextStep(MessageStatus.ENVIADA)
    if outcome is SendOutcome.REFUSED:
        return NextStep(MessageStatus.FALHOU, reason=f"refused by Evolution: {error}")
    if outcome is SendOutcome.UNKNOWN:
        # Maybe delivered: only the echo can tell. Whether to send again is decided when the
        # window closes (`give_up_reason` before the next attempt).
        return NextStep(MessageStatus.INCERTA, retry_in_s=policy.echo_window_s)
    reason = give_up_reason(attempts=attempts, owed_s=owed_s, policy=policy)
    if reason is not None:
        return NextStep(MessageStatus.FALHOU, reason=f"{reason}; last error: {error}")
    backoff_s = compute_backoff_s(
        attempts, base_s=policy.backoff_base_s, max_s=policy.backoff_max_s, jitter=jitter
    )
    return NextStep(MessageStatus.PENDENTE, retry_in_s=backoff_s)
