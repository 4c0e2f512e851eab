"""``b24mw check``: is the configured portal ready for b24mw?  Before going
live an operator wants to know, in one look, what the portal will refuse:

- the connection answers (incoming webhook, or the installed application's
  tokens) and whom it acts as (``user.current``);
- its scopes (``scope``): ``task`` and ``user`` always, ``im`` to read
  comments on the new task card; ``crm`` and ``imopenlines`` for customer
  chats (open lines), only reported;
- the user is a portal administrator (``user.admin``): without it, tasks
  people create stay invisible and their status cannot be changed, so
  orders and status changes end in the DLQ;
- the quota it sees: the plan from ``app.info`` (an application only; a
  webhook cannot read it) against the configured rate, and the operating
  time a method has used (``time.operating``);
- the portal's task card and whether ``tasks.task.get`` returns tags, as
  ``B24MW_WEBHOOK_TAGS_FROM`` expects.

Each finding is ``ok``, ``info`` or ``missing``; any ``missing`` makes the
command exit non-zero.  A handful of plain calls, well inside any quota.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from b24mw.bitrix24.client import Bitrix24Client, Reply
from b24mw.settings import Settings

OK, INFO, MISSING = "ok", "info", "missing"
REQUIRED_SCOPES = ("task", "user")
NEW_CARD_SCOPE = "im"
LATER_SCOPES = ("crm", "imopenlines")
# Leaky-bucket drain and size by plan (`settings/performance/limits.md`).
ENTERPRISE = (5.0, 250)
STANDARD = (2.0, 50)


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    status: str  # ok | info | missing
    detail: str


@dataclass(slots=True)
class Report:
    findings: list[Finding]

    @property
    def ready(self) -> bool:
        return all(f.status != MISSING for f in self.findings)

    def add(self, check: str, status: str, detail: str) -> None:
        self.findings.append(Finding(check, status, detail))


def _text(reply: Reply) -> str:
    return reply.error.text if reply.error is not None else ""


class PortalCheck:
    def __init__(self, settings: Settings, client: Bitrix24Client) -> None:
        self.settings = settings
        self.client = client
        self.report = Report([])

    async def run(self) -> Report:
        granted = await self._connection()
        if granted is None:
            return self.report
        self._scopes(granted)
        await self._admin()
        await self._quota()
        await self._tasks(granted)
        return self.report

    async def _connection(self) -> set[str] | None:
        """The scopes the connection was granted (``scope`` is a ``basic``
        method every caller may call); ``None`` when it does not answer."""
        mode = "local application (OAuth)" if self.settings.b24_auth == "oauth" else "webhook"
        if not await self.client.target.ready():
            self.report.add(
                "connection",
                MISSING,
                "the local application is not installed (or its tokens were refused): "
                "install it in Bitrix24 (README: Connecting a real portal)",
            )
            return None
        reply = await self.client.call("scope")
        if reply.error is not None or not isinstance(reply.result, list):
            self.report.add(
                "connection", MISSING, f"the {mode} does not answer: {_text(reply) or 'no list'}"
            )
            return None
        granted = {str(s) for s in reply.result}
        who = "an unknown user (no 'user' scope to ask)"
        if "user" in granted:
            me = await self.client.call("user.current")
            user = me.result if isinstance(me.result, dict) else {}
            name = " ".join(str(user.get(k) or "") for k in ("NAME", "LAST_NAME")).strip()
            who = f"user {user.get('ID')}" + (f" ({name})" if name else "")
        self.report.add("connection", OK, f"the {mode} answers as {who}")
        return granted

    def _scopes(self, granted: set[str]) -> None:
        lacking = [s for s in REQUIRED_SCOPES if s not in granted]
        listed = ", ".join(sorted(granted)) or "none"
        if lacking:
            self.report.add("scopes", MISSING, f"grant {', '.join(lacking)} (granted: {listed})")
        else:
            self.report.add("scopes", OK, f"granted: {listed}")
        if NEW_CARD_SCOPE in granted:
            self.report.add("scope im", OK, "granted: comments on the new task card can be read")
        else:
            self.report.add(
                "scope im",
                MISSING,
                "grant 'im': on the new task card comments are chat messages, read with "
                "im.dialog.messages.get (without it they wait and fail)",
            )
        later = [s for s in LATER_SCOPES if s not in granted]
        if later:
            self.report.add(
                "chat scopes",
                INFO,
                f"not granted: {', '.join(later)} (customer chats from open lines need "
                "them: crm.activity.get, imopenlines.*; the task flows do not)",
            )
        else:
            self.report.add("chat scopes", OK, "granted: customer chats can be read")

    async def _admin(self) -> None:
        reply = await self.client.call("user.admin")
        if reply.error is not None:
            self.report.add("administrator", MISSING, f"user.admin failed: {_text(reply)}")
        elif reply.result is True:
            self.report.add("administrator", OK, "the integration user is an administrator")
        else:
            self.report.add(
                "administrator",
                MISSING,
                "the integration user is not an administrator: it cannot see tasks people "
                "create nor change their status (those orders and status changes would end "
                "in the DLQ); make it a Bitrix24 administrator",
            )

    async def _quota(self) -> None:
        configured = f"{self.settings.b24_rps:g} req/s, burst {self.settings.b24_burst}"
        reply = await self.client.call("app.info")
        info = reply.result if isinstance(reply.result, dict) else None
        if reply.error is not None or info is None:
            self.report.add(
                "quota",
                INFO,
                f"the plan cannot be read ({_text(reply) or 'no answer'}; app.info needs an "
                f"application); configured {configured} — 2 req/s suits every plan",
            )
            return
        license_name = str(info.get("LICENSE") or "?")
        family = str(info.get("LICENSE_FAMILY") or "")
        rps, burst = ENTERPRISE if family == "ent" else STANDARD
        plan = f"plan {license_name}: {rps:g} req/s, burst {burst}"
        if self.settings.b24_rps > rps:
            self.report.add(
                "quota",
                MISSING,
                f"{plan}; B24MW_B24_RPS {self.settings.b24_rps:g} is above it "
                "(QUERY_LIMIT_EXCEEDED would slow every process): lower it",
            )
        else:
            self.report.add("quota", OK, f"{plan}; configured {configured}")

    async def _tasks(self, scopes: set[str]) -> None:
        reply = await self.client.call(
            "tasks.task.list",
            {"select": ["ID"], "order": {"ID": "desc"}, "start": -1},
        )
        if reply.error is not None:
            self.report.add("tasks", MISSING, f"tasks.task.list failed: {_text(reply)}")
            return
        operating = (reply.time or {}).get("operating")
        if isinstance(operating, int | float):
            self.report.add(
                "operating time",
                INFO,
                f"tasks.task.list has used {operating:.2f} s of its operating time in the "
                f"last 10 minutes (b24mw pauses a method at "
                f"{self.settings.b24_operating_soft:.0%} of "
                f"{self.settings.b24_operating_limit_s:g} s)",
            )
        tasks = reply.result.get("tasks") if isinstance(reply.result, dict) else None
        first = tasks[0] if isinstance(tasks, list) and tasks else None
        task_id = first.get("id") if isinstance(first, dict) else None
        if task_id is None:
            self.report.add(
                "task card",
                INFO,
                "no task visible yet: the task card and tag reads are checked once one exists",
            )
            return
        got = await self.client.call(
            "tasks.task.get", {"taskId": task_id, "select": ["ID", "TAGS", "CHAT_ID"]}
        )
        task = got.result.get("task") if isinstance(got.result, dict) else None
        if got.error is not None or not isinstance(task, dict):
            self.report.add("task card", MISSING, f"tasks.task.get failed: {_text(got)}")
            return
        self._card(task, scopes)
        self._tags(task)

    def _card(self, task: dict[str, Any], scopes: set[str]) -> None:
        if task.get("chatId"):
            status = OK if NEW_CARD_SCOPE in scopes else MISSING
            self.report.add(
                "task card",
                status,
                "new (comments are chat messages"
                + (")" if status == OK else "): grant the 'im' scope to read them)"),
            )
        else:
            self.report.add("task card", OK, "classic (comments are read with task.commentitem.*)")

    def _tags(self, task: dict[str, Any]) -> None:
        setting = self.settings.webhook_tags_from
        if "tags" in task:
            self.report.add(
                "tag reads",
                OK,
                f"tasks.task.get returns tags (B24MW_WEBHOOK_TAGS_FROM={setting})",
            )
        elif setting == "get":
            self.report.add(
                "tag reads",
                MISSING,
                "this portal's tasks.task.get does not return tags: set "
                "B24MW_WEBHOOK_TAGS_FROM=list",
            )
        else:
            self.report.add(
                "tag reads", OK, "tags are read with tasks.task.list (B24MW_WEBHOOK_TAGS_FROM=list)"
            )
