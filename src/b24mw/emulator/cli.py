"""`b24mw emulator`: run the portal under uvicorn."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from b24mw.emulator.config import (
    DEFAULT_APPLICATION_TOKEN,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_PORT,
    DEFAULT_REST_SECRET,
    DEFAULT_WEBHOOK_SCOPE,
    EmulatorConfig,
)


def masked(secret: str) -> str:
    """Enough of a secret to tell which one it is, not enough to use it."""
    return secret[:2] + "*" * 6 if len(secret) >= 8 else "*" * 6


class TaskCard(StrEnum):
    CLASSIC = "classic"
    NEW = "new"


def emulator_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = DEFAULT_PORT,
    rest_user: Annotated[
        int, typer.Option(help="User id of the incoming webhook: /rest/<user>/<secret>/.")
    ] = 1,
    rest_secret: Annotated[
        str, typer.Option(help="Secret of the incoming webhook: /rest/<user>/<secret>/.")
    ] = DEFAULT_REST_SECRET,
    handler_url: Annotated[
        str | None,
        typer.Option(help="Where task and comment events are POSTed (outgoing webhook)."),
    ] = None,
    application_token: Annotated[
        str, typer.Option(help="application_token sent in the auth block of every event.")
    ] = DEFAULT_APPLICATION_TOKEN,
    sign_secret: Annotated[
        str | None,
        typer.Option(
            help="Act as a signing proxy: add X-Request-Id, X-Request-Timestamp and "
            "X-Signature (HMAC-SHA256) to every event."
        ),
    ] = None,
    rps: Annotated[
        float, typer.Option(help="Leaky-bucket drain, requests per second; 0 disables the limit.")
    ] = 2.0,
    burst: Annotated[
        float, typer.Option(help="Leaky-bucket size: requests accepted at once.")
    ] = 50.0,
    operating_limit_s: Annotated[
        float,
        typer.Option(help="Execution seconds per method per 10 minutes before 429; 0 disables it."),
    ] = 480.0,
    operating_cost_s: Annotated[
        float,
        typer.Option(help="Simulated execution seconds charged to every call."),
    ] = 0.0,
    state: Annotated[
        Path | None,
        typer.Option(help="JSON file that keeps tasks and comments across restarts."),
    ] = None,
    domain: Annotated[
        str | None, typer.Option(help="Portal domain in events (default: host:port).")
    ] = None,
    member_id: Annotated[
        str | None,
        typer.Option(help="member_id in the auth block of events (default: from the domain)."),
    ] = None,
    events_enabled: Annotated[
        bool, typer.Option(help="Deliver events; --no-events-enabled loses them all.")
    ] = True,
    client_id: Annotated[
        str, typer.Option(help="client_id of the local application (OAuth).")
    ] = DEFAULT_CLIENT_ID,
    client_secret: Annotated[
        str, typer.Option(help="client_secret of the local application (OAuth).")
    ] = DEFAULT_CLIENT_SECRET,
    access_token_lifetime_s: Annotated[
        float, typer.Option(help="Lifetime of an OAuth access token, seconds.", min=1)
    ] = 3600.0,
    task_card: Annotated[
        TaskCard,
        typer.Option(
            help="The task card of the portal: classic (comments) or new (tasks 25.700+: "
            "comments are messages of each task's chat)."
        ),
    ] = TaskCard.CLASSIC,
    webhook_scope: Annotated[
        str, typer.Option(help="Scopes of the incoming webhook, comma-separated.")
    ] = DEFAULT_WEBHOOK_SCOPE,
    rest_user_admin: Annotated[
        bool,
        typer.Option(
            help="The webhook user is a portal administrator; --no-rest-user-admin: it sees "
            "and changes only tasks where it has a role."
        ),
    ] = True,
    task_get_tags: Annotated[
        bool,
        typer.Option(
            help="tasks.task.get returns tags when select has TAGS; --no-task-get-tags: "
            "a portal whose get ignores it."
        ),
    ] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Run a local Bitrix24 portal: REST methods, limits, faults and outgoing events."""
    import uvicorn

    from b24mw.emulator.app import create_app

    config = EmulatorConfig(
        host=host,
        port=port,
        rest_user=rest_user,
        rest_secret=rest_secret,
        handler_url=handler_url,
        application_token=application_token,
        sign_secret=sign_secret,
        rps=rps,
        burst=burst,
        operating_limit_s=operating_limit_s,
        operating_cost_s=operating_cost_s,
        state_file=state,
        domain=domain,
        member_id=member_id,
        events_enabled=events_enabled,
        oauth_client_id=client_id,
        oauth_client_secret=client_secret,
        access_token_lifetime_s=access_token_lifetime_s,
        task_card=task_card.value,
        webhook_scope=webhook_scope,
        rest_user_admin=rest_user_admin,
        task_get_tags=task_get_tags,
    )
    app = create_app(config)
    # The secret is the webhook's password: terminals and CI logs keep what is printed.
    typer.echo(
        f"Bitrix24 emulator on http://{host}:{port}/rest/{rest_user}/{masked(rest_secret)}/ "
        f"(control API: http://{host}:{port}/_emulator/)",
        err=True,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
