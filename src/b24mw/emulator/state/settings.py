"""Switches the control API may change while the emulator runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from b24mw.emulator.config import EmulatorConfig
from b24mw.emulator.rest.im.chats import CARDS
from b24mw.emulator.state.crm_settings import SettingsError, crm_setting


@dataclass
class RuntimeSettings:
    rps: float
    burst: float
    operating_limit_s: float
    handler_url: str | None
    events_enabled: bool
    sign_secret: str | None
    application_token: str
    operating_cost_s: float
    operating_costs: dict[str, float] = field(default_factory=dict)
    task_card: str = "classic"
    webhook_scope: str = "task,user,im,imopenlines,crm"
    # CRM (emulator/crm.py): extra deal pipelines over the default one, the
    # fields a stage requires, automation rules (stage entered -> stage the
    # portal then moves the deal to), stages the webhook user may not set,
    # and the CRM mode (1 classic, 2 simple: no leads).
    crm_pipelines: list[dict[str, Any]] = field(default_factory=list)
    crm_required_fields: dict[str, list[str]] = field(default_factory=dict)
    crm_automation: dict[str, str] = field(default_factory=dict)
    crm_stage_denied: list[str] = field(default_factory=list)
    crm_mode: int = 1
    # The webhook user (and the application acting as it) is a portal administrator.
    rest_user_admin: bool = True
    # `tasks.task.get` fills `tags` when `select` has TAGS (the tasks module's
    # REST controller); False: a portal whose get ignores it.
    task_get_tags: bool = True

    @classmethod
    def from_config(cls, config: EmulatorConfig) -> RuntimeSettings:
        if config.task_card not in CARDS:
            raise SettingsError(f"task_card must be one of {', '.join(CARDS)}")
        return cls(
            rps=config.rps,
            burst=config.burst,
            operating_limit_s=config.operating_limit_s,
            handler_url=config.handler_url,
            events_enabled=config.events_enabled,
            sign_secret=config.sign_secret,
            application_token=config.application_token,
            operating_cost_s=config.operating_cost_s,
            operating_costs={k.lower(): v for k, v in config.operating_costs.items()},
            task_card=config.task_card,
            webhook_scope=config.webhook_scope,
            rest_user_admin=config.rest_user_admin,
            task_get_tags=config.task_get_tags,
        )

    def cost_for(self, method: str) -> float:
        return self.operating_costs.get(method, self.operating_cost_s)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def update(self, changes: Mapping[str, Any]) -> None:
        """Validate every change before applying any of them."""
        valid: dict[str, Any] = {}
        for key, value in changes.items():
            if key in ("rps", "burst", "operating_limit_s", "operating_cost_s"):
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise SettingsError(f"{key} must be a non-negative number")
                valid[key] = float(value)
            elif key in ("handler_url", "sign_secret"):
                if value is not None and not isinstance(value, str):
                    raise SettingsError(f"{key} must be a string or null")
                valid[key] = value or None
            elif key == "application_token":
                if not isinstance(value, str):
                    raise SettingsError("application_token must be a string")
                valid[key] = value
            elif key in ("events_enabled", "rest_user_admin", "task_get_tags"):
                if not isinstance(value, bool):
                    raise SettingsError(f"{key} must be true or false")
                valid[key] = value
            elif key == "task_card":
                if value not in CARDS:
                    raise SettingsError(f"task_card must be one of {', '.join(CARDS)}")
                valid[key] = value
            elif key == "webhook_scope":
                if not isinstance(value, str):
                    raise SettingsError("webhook_scope must be a comma-separated string")
                valid[key] = value
            elif key == "operating_costs":
                if not isinstance(value, Mapping) or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
                    for v in value.values()
                ):
                    raise SettingsError("operating_costs must map method names to seconds")
                valid[key] = {str(k).lower(): float(v) for k, v in value.items()}
            elif key.startswith("crm_"):
                valid[key] = crm_setting(key, value)
            else:
                raise SettingsError(f"unknown setting {key!r}")
        for key, value in valid.items():
            setattr(self, key, value)
