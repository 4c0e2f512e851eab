"""Process settings: ``B24MW_*`` environment variables and an optional ``.env`` file.

Names are fixed by SPEC §2 because operators and tools rely on them.  A bad
value stops the process with one line that names the setting (see
``load_settings``), never a traceback.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./var/b24mw.db"
DEFAULT_OAUTH_SERVER = "https://oauth.bitrix.info/oauth/token/"
# An incoming webhook: https://PORTAL/rest/<user id>/<secret>/ (BITRIX24.md §2).
_WEBHOOK_URL = re.compile(r"https?://[^/\s?#]+/rest/[0-9]+/[^/\s?#]+/?")


class SettingsError(Exception):
    """A setting is missing or invalid; the message names it."""


def _split_csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="B24MW_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = DEFAULT_SQLITE_URL
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=20, ge=0, le=500)

    jwt_secret: SecretStr | None = None
    jwt_public_key: SecretStr | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_s: int = Field(default=30, ge=0, le=600)

    b24_url: str | None = None
    b24_rps: float = Field(default=2.0, gt=0, le=1000)
    b24_rpm: int = Field(default=120, ge=1, le=100_000)
    b24_burst: int = Field(default=2, ge=1, le=1000)
    # How calls authenticate: an incoming webhook (B24MW_B24_URL), or b24mw as a
    # local application whose OAuth tokens live in the database (b24app/).
    b24_auth: Literal["webhook", "oauth"] = "webhook"
    b24_portal_url: str | None = None
    b24_client_id: str | None = None
    b24_client_secret: SecretStr | None = None
    b24_oauth_server: str = DEFAULT_OAUTH_SERVER
    b24_oauth_timeout_s: float = Field(default=10.0, gt=0, le=60)
    # Refresh an access token this long before it expires, so no call meets expired_token.
    b24_token_margin_s: float = Field(default=60.0, ge=0, le=1800)
    # Where Bitrix24 reaches b24mw (https://host[:port]); the local application
    # binds its event handlers under it.  Unset: taken from the install request.
    public_url: str | None = None
    # Outbound engine (issue 4; docs/outbound.md).
    b24_rate_floor: float = Field(default=0.2, gt=0, le=1000)
    b24_window_margin_s: float = Field(default=0.02, ge=0, le=5)
    b24_pause_s: float = Field(default=1.0, ge=0, le=600)
    b24_recover_after: int = Field(default=10, ge=1, le=10_000)
    b24_recover_step: float = Field(default=0.1, gt=0, le=1000)
    b24_operating_limit_s: float = Field(default=480.0, gt=0)
    b24_operating_soft: float = Field(default=0.9, gt=0, le=1.0)
    b24_operating_block_s: float = Field(default=60.0, gt=0, le=600)
    b24_overload_pause_s: float = Field(default=600.0, ge=0)
    b24_batch_max: int = Field(default=50, ge=1, le=50)
    b24_max_wait_s: float = Field(default=2.0, ge=0, le=60)
    b24_timeout_s: float = Field(default=30.0, gt=0, le=120)
    b24_connect_timeout_s: float = Field(default=5.0, gt=0, le=60)
    outbound_timeout_s: float = Field(default=10.0, gt=0, le=120)
    outbox_retry_delays: str = "10,30,120,600"
    outbox_lease_s: float = Field(default=120.0, gt=0, le=3600)
    # A write whose answer was lost may still be running on the portal (a cloud
    # request runs up to 60 s): it is looked up (or re-sent) only this long
    # after it could last have been sent (docs/outbound.md).
    outbox_late_apply_s: float = Field(default=90.0, ge=0, le=3600)
    outbox_poll_s: float = Field(default=0.1, gt=0, le=0.2)
    outbox_concurrency: int = Field(default=16, ge=1, le=256)
    outbox_metrics_interval_s: float = Field(default=5.0, gt=0, le=3600)
    event_signing_secret: SecretStr | None = None

    webhook_auth: Literal["hmac", "token", "both"] = "hmac"
    webhook_secrets: SecretStr | None = None
    webhook_app_tokens: SecretStr | None = None

    siem_sink: str = "stdout"
    event_sinks: str = "file://./var/events.jsonl"
    onec_url: str | None = None
    archive_url: str = "file://./var/archive"
    s3_endpoint_url: str | None = None
    retention_days: int = Field(default=90, ge=1, le=3650)
    # Retention (issue 14; docs/retention.md).  S3 credentials left unset fall
    # back to boto3's standard chain (AWS_* variables, ~/.aws, instance role).
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    archive_batch_rows: int = Field(default=20_000, ge=100, le=200_000)
    archive_lease_s: float = Field(default=300.0, ge=1, le=86_400)
    archive_parallel_days: int = Field(default=1, ge=1, le=8)
    archive_nice: int = Field(default=10, ge=0, le=19)
    purge_inbox_after_days: int = Field(default=7, ge=1, le=3650)
    purge_outbox_done_after_days: int = Field(default=7, ge=1, le=3650)
    purge_dlq_discarded_after_days: int = Field(default=30, ge=1, le=3650)
    locale: Literal["ru", "en"] = "ru"

    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    idempotency_ttl_hours: int = Field(default=72, ge=1, le=24 * 30)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True
    # Deadline of the "return the goods to the customer" subtask (SPEC §4.1).
    return_subtask_deadline_hours: int = Field(default=24, ge=1, le=24 * 365)
    # Inbound webhooks (issue 7; docs/webhooks.md).  member_id/domain are
    # checked against auth[...] in token mode when set.
    webhook_member_id: str | None = None
    webhook_domain: str | None = None
    # Bitrix24 events are a few hundred bytes; anything near this is not one.
    webhook_max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=2 * 1024 * 1024)
    webhook_inbox_max_attempts: int = Field(default=6, ge=1, le=100)
    webhook_reconcile_interval_s: float = Field(default=60.0, gt=0, le=86_400)
    webhook_order_tag: str = "instant_order"
    # Customer chats (issue 17; docs/support.md): how often an open session's
    # dialog is checked for new messages, and how often the poller may spend
    # one batch request (its share of the quota: 1 / round).
    support_poll_interval_s: float = Field(default=20.0, ge=1.0, le=3600)
    support_poll_round_s: float = Field(default=2.0, ge=0.0, le=600)
    # Where a task's tags are read: in the `tasks.task.get` that reads the task
    # (`select` has TAGS; one command per event), or an extra `tasks.task.list`
    # for a portal whose get does not return them.
    webhook_tags_from: Literal["get", "list"] = "get"
    # Our own Bitrix24 user (changes by it are ours: recorded, not acted on);
    # taken from B24MW_B24_URL (/rest/<user>/...) when unset.
    webhook_self_user_id: int | None = Field(default=None, gt=0)

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("b24_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is not None and not _WEBHOOK_URL.fullmatch(value.strip()):
            raise ValueError(
                "must be an incoming webhook URL, https://PORTAL/rest/<user id>/<secret>/"
            )
        return value.strip() if value else value

    @field_validator("b24_portal_url", "public_url")
    @classmethod
    def _site_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError("must be an address like https://host[:port]")
        if parts.path.strip("/"):
            raise ValueError("must be the site address only, without a path")
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("b24_oauth_server")
    @classmethod
    def _oauth_server(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be the OAuth token URL, e.g. {DEFAULT_OAUTH_SERVER}")
        return value.strip()

    @field_validator("siem_sink")
    @classmethod
    def _siem_sink(cls, value: str) -> str:
        from b24mw.siem.sinks import parse_sink

        parse_sink(value)
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def webhook_secret_list(self) -> list[str]:
        return _split_csv(self.webhook_secrets.get_secret_value() if self.webhook_secrets else None)

    @property
    def webhook_app_token_list(self) -> list[str]:
        raw = self.webhook_app_tokens.get_secret_value() if self.webhook_app_tokens else None
        return _split_csv(raw)

    @property
    def event_sink_list(self) -> list[str]:
        return _split_csv(self.event_sinks)

    @field_validator("outbox_retry_delays")
    @classmethod
    def _retry_delays(cls, value: str) -> str:
        try:
            delays = [float(part) for part in _split_csv(value)]
        except ValueError:
            raise ValueError("must be comma-separated seconds, e.g. 10,30,120,600") from None
        if not delays or any(d < 0 for d in delays):
            raise ValueError("must list at least one non-negative delay")
        return value

    @property
    def outbox_retry_delay_list(self) -> list[float]:
        return [float(part) for part in _split_csv(self.outbox_retry_delays)]

    @property
    def b24_configured(self) -> bool:
        """Whether this deployment talks to Bitrix24 at all.  One that sets none
        of the Bitrix24 settings (an API-only trial, ``make run``) is left alone."""
        return (
            self.b24_auth == "oauth"
            or bool(self.b24_url)
            or bool(self.webhook_secret_list)
            or bool(self.webhook_app_token_list)
            or "webhook_auth" in self.model_fields_set
        )

    def require_bitrix24(self) -> None:
        """Refuse a Bitrix24 configuration that cannot work (``serve``, ``worker``).

        Each rule names the setting to fix; the first one that fails is reported.
        """
        if self.b24_auth == "oauth":
            self._require_oauth()
        if not self.b24_configured:
            return
        mode = self.webhook_auth
        if mode in ("hmac", "both") and not self.webhook_secret_list:
            raise SettingsError(
                f"B24MW_WEBHOOK_SECRETS: missing (B24MW_WEBHOOK_AUTH={mode} checks the "
                "HMAC signature of every event against them)"
            )
        if mode in ("token", "both") and not self.webhook_app_token_list:
            if self.b24_auth != "oauth":
                raise SettingsError(
                    f"B24MW_WEBHOOK_APP_TOKENS: missing (B24MW_WEBHOOK_AUTH={mode} compares "
                    "every event's auth[application_token] with them; with "
                    "B24MW_B24_AUTH=oauth the installed application provides one)"
                )

    def _require_oauth(self) -> None:
        why = "required with B24MW_B24_AUTH=oauth"
        if not self.b24_portal_url:
            raise SettingsError(f"B24MW_B24_PORTAL_URL: missing ({why}: https://PORTAL)")
        if not (self.b24_client_id or "").strip():
            raise SettingsError(
                f"B24MW_B24_CLIENT_ID: missing ({why}: the local application's client id)"
            )
        secret = self.b24_client_secret.get_secret_value() if self.b24_client_secret else ""
        if not secret.strip():
            raise SettingsError(
                f"B24MW_B24_CLIENT_SECRET: missing ({why}: the local application's secret)"
            )
        if self.b24_url:
            raise SettingsError(
                "B24MW_B24_URL: not used with B24MW_B24_AUTH=oauth (calls go to the "
                "installed application's endpoint); unset it or use B24MW_B24_AUTH=webhook"
            )

    def require_jwt(self) -> None:
        """The API cannot authenticate anyone without a key: refuse to start."""
        if self.jwt_secret is None and self.jwt_public_key is None:
            raise SettingsError(
                "B24MW_JWT_SECRET: missing (set it, or B24MW_JWT_PUBLIC_KEY for RS256)"
            )


def load_settings() -> Settings:
    """Build settings, turning pydantic's report into one line naming the setting."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "B24MW_" + str(first["loc"][0]).upper() if first["loc"] else "B24MW_*"
        raise SettingsError(f"{name}: {first['msg']}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
