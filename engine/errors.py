"""Conversa's errors: one root, each raised for one reason. Routes map them to HTTP statuses."""

from __future__ import annotations


class ConversaError(Exception):
    """Root of every error Conversa raises on purpose."""


class MalformedWebhook(ConversaError):
    """Raised when a webhook body is not a usable Evolution event (answered 422)."""


class InvalidJson(MalformedWebhook):
    """Raised when a request body is not valid JSON, or nested too deeply (answered 400)."""


class Unauthenticated(ConversaError):
    """Raised when a webhook or operator request lacks the right secret (answered 401). A
    webhook for an instance that does not exist gets the same answer as a wrong secret."""


class InvalidSignature(ConversaError):
    """Raised when a Stripe event's signature is missing, wrong or too old (answered 400)."""


class Forbidden(ConversaError):
    """Raised when a valid API key asks for something its cliente may not do (answered 403)."""


class NotFound(ConversaError):
    """Raised when an operator asks for something that does not exist (answered 404)."""


class Conflict(ConversaError):
    """Raised when a create would duplicate something unique, or a change would clash with work
    in progress (answered 409)."""


class InvalidInput(ConversaError):
    """Raised when operator input is well-formed but not acceptable (answered 422)."""


class UnsupportedMediaType(ConversaError):
    """Raised when an upload's Content-Type is not one Conversa reads (answered 415)."""


class PayloadTooLarge(ConversaError):
    """Raised when an upload is over the size limit (answered 413)."""


class TooManyRequests(ConversaError):
    """Raised when a caller is over a rate limit (answered 429 with `Retry-After`)."""

    def __init__(self, message: str, *, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NotConfigured(ConversaError):
    """Raised when a feature needs a setting that is not set, e.g. STRIPE_API_KEY (answered 503)."""


class UpstreamUnavailable(ConversaError):
    """Raised when Stripe or Evolution cannot be reached or fails on its side (answered 502)."""


class UpstreamRefused(ConversaError):
    """Raised when Evolution refuses a request Conversa made for a tenant (answered 409): the
    instance is in a state that does not allow it (e.g. logging out one not connected)."""


class SecretUnreadable(ConversaError):
    """Raised when a secret stored encrypted cannot be opened with SECRETS_KEY (answered 500)."""


class ActorClosing(ConversaError):
    """Raised by an actor that has begun to leave (idle or evicted); retry on a new one."""


class DatabaseUnavailable(ConversaError):
    """Raised when PostgreSQL cannot be reached, went away mid-request, or a statement ran past
    DB_STATEMENT_TIMEOUT_S (answered 503: Evolution retries the webhook)."""


class TurnTakenOver(ConversaError):
    """Raised when a turn's lease was lost (it expired and recovery took the turn over)."""


class SendFailed(ConversaError):
    """Raised when Evolution refuses or cannot be reached for a send; nothing was sent.
    `retryable`: the same request may succeed later (unreachable, 5xx, 429)."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class SendOutcomeUnknown(SendFailed):
    """Raised when a send may have reached Evolution but its answer was lost (a timeout or a
    connection reset after the request was written): it may have been delivered."""

    def __init__(self, message: str):
        super().__init__(message, retryable=True)
