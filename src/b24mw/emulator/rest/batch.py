"""`batch`: up to 50 `method?query` commands in one request, one unit against the bucket.

Commands run in order; later ones may use `$result[key][...]` from earlier ones. Each
command is charged to its own method's operating time and may hit its own faults.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from b24mw.emulator.limits.faults import Fault
from b24mw.emulator.rest.methodkit import Args, named
from b24mw.emulator.wire.errors import B24Error, invalid_request
from b24mw.emulator.wire.phpquery import parse_query, scalar
from b24mw.emulator.wire.replies import AbortRequest, Outcome, Reply, error_reply

if TYPE_CHECKING:
    from b24mw.emulator.portal import Portal

MAX_COMMANDS = 50
_GROUPS = ("result", "result_error", "result_total", "result_next", "result_time")
_REFERENCE = re.compile(
    r"\$(result_total|result_next|result_error|result_time|result)((?:\[[^\[\]]*\])+)"
)
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def php_array(mapping: dict[str, Any]) -> dict[str, Any] | list[Any]:
    """json_encode's view of a PHP array: `[]` when empty, a list for keys 0..n-1."""
    keys = list(mapping)
    if keys == [str(i) for i in range(len(keys))]:
        return list(mapping.values())
    return mapping


def parse_command(command: str) -> tuple[str, Args]:
    method, _, query = command.partition("?")
    name = method.strip().lower()
    return name.removesuffix(".json"), parse_query(query)


def _resolve(maps: dict[str, dict[str, Any]], group: str, path: str) -> tuple[bool, Any]:
    node: Any = maps[group]
    for segment in _SEGMENT.findall(path):
        if isinstance(node, dict) and segment in node:
            node = node[segment]
        elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
            node = node[int(segment)]
        else:
            return False, None
    return True, node


def substitute(value: Any, maps: dict[str, dict[str, Any]]) -> Any:
    """Replace `$result[...]` references; unresolvable ones stay literal so they fail loudly."""
    if isinstance(value, dict):
        return {k: substitute(v, maps) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, maps) for v in value]
    if not isinstance(value, str) or "$result" not in value:
        return value
    whole = _REFERENCE.fullmatch(value)
    if whole is not None:
        found, resolved = _resolve(maps, whole.group(1), whole.group(2))
        if not found:
            return value
        return resolved if isinstance(resolved, dict | list) else scalar(resolved)

    def replace(match: re.Match[str]) -> str:
        found, resolved = _resolve(maps, match.group(1), match.group(2))
        if not found or isinstance(resolved, dict | list):
            return match.group(0)
        return scalar(resolved)

    return _REFERENCE.sub(replace, value)


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("1", "true", "y", "yes", "on")


async def _command_fault(portal: Portal, fault: Fault, now: float) -> B24Error | None:
    if fault.kind in ("html_502", "hang"):
        # The PHP process dies mid-batch: earlier commands stay done, the answer is lost.
        raise AbortRequest(fault)
    if fault.kind == "latency":
        await asyncio.sleep(fault.latency_s)
        return None
    return portal.fault_error(fault, now)


async def _run_command(portal: Portal, method: str, args: Args, now: float) -> Outcome:
    if method == "batch":
        error = B24Error("ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage")
        return Outcome(None, error, None)
    fault = portal.faults.take(method, now, top_level=False)
    if fault is not None and fault.phase == "before":
        error_before = await _command_fault(portal, fault, now)
        if error_before is not None:
            return Outcome(None, error_before, None)
    if fault is not None and fault.apply_delay_s is not None:
        # Not now: later, after this batch has answered (or died).
        portal.apply_late(method, args, fault.apply_delay_s)
        return Outcome(None, await _command_fault(portal, fault, now), None)
    outcome = portal.execute(method, args, now)
    if fault is not None and fault.phase == "after":
        error_after = await _command_fault(portal, fault, now)
        if error_after is not None:
            return Outcome(None, error_after, None)
    return outcome


def _commands(raw: Any) -> dict[str, Any] | None:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, list):
        return {str(i): command for i, command in enumerate(raw)}
    if isinstance(raw, Mapping):
        return {str(k): command for k, command in raw.items()}
    return None


async def run_batch(portal: Portal, call: dict[str, Any], args: Args, start: float) -> Reply:
    params = named(args)
    commands = _commands(params.get("cmd"))
    if commands is None:
        return error_reply(invalid_request("Parameter cmd must be an array of commands"))
    if len(commands) > MAX_COMMANDS:
        return error_reply(
            B24Error("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded", 400)
        )
    halt = _truthy(params.get("halt", 0))
    maps: dict[str, dict[str, Any]] = {group: {} for group in _GROUPS}
    records: list[dict[str, Any]] = []
    call["commands"] = records
    began = time.perf_counter()
    for key, command in commands.items():
        now = portal.clock()
        if not isinstance(command, str):
            bad = invalid_request("A batch command must be a string: method?query")
            records.append({"key": key, "method": None, "args": command, "error": bad.code})
            maps["result_error"][key] = bad.short()
            if halt:
                break
            continue
        method, command_args = parse_command(command)
        command_args = substitute(command_args, maps)
        record: dict[str, Any] = {"key": key, "method": method, "args": command_args, "error": None}
        records.append(record)
        try:
            outcome = await _run_command(portal, method, command_args, now)
        except AbortRequest as abort:
            record["error"] = abort.fault.kind
            raise
        if outcome.error is not None or outcome.result is None:
            error = outcome.error or invalid_request("Command failed")
            record["error"] = error.code
            maps["result_error"][key] = error.short()
            if halt:
                break
            continue
        maps["result"][key] = outcome.result.result
        if outcome.result.total is not None:
            maps["result_total"][key] = outcome.result.total
        if outcome.result.next is not None:
            maps["result_next"][key] = outcome.result.next
        if outcome.time is not None:
            maps["result_time"][key] = outcome.time
    processing = time.perf_counter() - began
    payload = {
        "result": {group: php_array(maps[group]) for group in _GROUPS},
        "time": portal.time_block("batch", start, processing),
    }
    return Reply(200, payload)
