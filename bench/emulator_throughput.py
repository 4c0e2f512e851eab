"""Throughput of the Bitrix24 emulator on one core, against a trivial baseline.

The emulator (`python -m b24mw.emulator --rps 0 --operating-limit-s 0`) and the
baseline run under the same uvicorn settings in a subprocess pinned to core 0
(`taskset -c 0` when available). This process, pinned to core 1, calls
`tasks.task.get` for a bounded time and prints JSON:

    python bench/emulator_throughput.py [--duration 5]

Two load generators run against each server, one after the other:

- `httpx`: concurrent `httpx.AsyncClient` workers, the client the middleware uses.
  On one core httpx itself tops out near 1,000 requests/s, so against a fast server
  it measures the client more than the server (the baseline shows where that is).
- `raw_http11`: a minimal keep-alive HTTP/1.1 client on asyncio streams (what `wrk`
  does), light enough to saturate the server core; its figures are the server's.

The baseline is a Starlette endpoint that answers a fixed JSON body without reading
the request: the gap between the two is what the emulator's own work costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from common import (  # bench/ is on sys.path when run as a script
    CLIENT_CORE,
    REST,
    SERVER_CORE,
    arg_parser,
    can_pin,
    free_port,
    pin_self,
    pinned,
    print_json,
    read_response,
    running,
)

TARGET_RPS = 1000.0
SEED_TASKS = 100
# What `b24mw emulator` passes to uvicorn: "auto" picks uvloop and httptools when installed.
UVICORN_SETTINGS: dict[str, Any] = {
    "loop": "auto",
    "http": "auto",
    "access_log": False,
    "log_level": "warning",
}


def serve_baseline(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    body = json.dumps({"result": {"task": {"id": "1", "title": "baseline"}}}).encode()

    async def endpoint(request: Request) -> Response:
        return Response(body, media_type="application/json")

    async def health(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    app = Starlette(
        routes=[
            Route("/rest/{user}/{secret}/{method}", endpoint, methods=["GET", "POST"]),
            Route("/_emulator/health", health),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, **UVICORN_SETTINGS)


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def pct(p: float) -> float:
            if not ordered:
                return 0.0
            index = min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))
            return round(ordered[index] * 1000, 3)

        return {
            "requests": len(ordered),
            "errors": self.errors,
            "seconds": round(self.elapsed, 3),
            "requests_per_s": round(len(ordered) / self.elapsed, 1) if self.elapsed else 0.0,
            "p50_ms": pct(50),
            "p95_ms": pct(95),
            "p99_ms": pct(99),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 3) if ordered else 0.0,
        }


Call = Callable[[int], Awaitable[bool]]


async def timed_workers(calls: list[Call], duration: float, warmup: float) -> Run:
    """One worker per call function, looping until the deadline; warm-up is not counted."""
    run = Run()
    started = time.perf_counter()
    measure_from = started + warmup
    stop_at = measure_from + duration

    async def worker(call: Call, offset: int) -> None:
        task_id = offset
        while True:
            began = time.perf_counter()
            if began >= stop_at:
                return
            task_id = task_id % SEED_TASKS + 1
            try:
                ok = await call(task_id)
            except (OSError, httpx.HTTPError, asyncio.IncompleteReadError, ValueError):
                ok = False
            if began < measure_from:
                continue
            if ok:
                run.latencies.append(time.perf_counter() - began)
            else:
                run.errors += 1

    await asyncio.gather(*(worker(call, i) for i, call in enumerate(calls)))
    run.elapsed = time.perf_counter() - measure_from
    return run


async def drive_httpx(port: int, concurrency: int, duration: float, warmup: float) -> Run:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=10
    ) as client:

        async def call(task_id: int) -> bool:
            response = await client.post(f"{REST}/tasks.task.get", json={"taskId": task_id})
            return response.status_code == 200

        return await timed_workers([call] * concurrency, duration, warmup)


def _request(task_id: int) -> bytes:
    body = json.dumps({"taskId": task_id}).encode()
    head = (
        f"POST {REST}/tasks.task.get HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def drive_raw(port: int, concurrency: int, duration: float, warmup: float) -> Run:
    requests = {task_id: _request(task_id) for task_id in range(1, SEED_TASKS + 1)}
    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(concurrency)]

    def make_call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Call:
        async def call(task_id: int) -> bool:
            writer.write(requests[task_id])
            await writer.drain()
            status, _ = await read_response(reader)
            return status == 200

        return call

    try:
        return await timed_workers([make_call(r, w) for r, w in streams], duration, warmup)
    finally:
        for _, writer in streams:
            writer.close()


async def seed(port: int) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for start in range(0, SEED_TASKS, 50):
            cmd = {
                f"t{i}": f"tasks.task.add?fields[TITLE]=Task%20{i}&fields[RESPONSIBLE_ID]=3"
                "&fields[TAGS][]=instant_order"
                for i in range(start, min(start + 50, SEED_TASKS))
            }
            response = await client.post(f"{REST}/batch", json={"halt": 1, "cmd": cmd})
            response.raise_for_status()
        check = await client.post(f"{REST}/tasks.task.get", json={"taskId": SEED_TASKS})
        if check.json()["result"]["task"]["id"] != str(SEED_TASKS):
            raise RuntimeError("seeding failed")


def server_command(name: str, port: int) -> list[str]:
    if name == "emulator":
        # The real command, limits off: `b24mw emulator --rps 0 --operating-limit-s 0`.
        server = [sys.executable, "-m", "b24mw.emulator", "--port", str(port), "--rps", "0"]
        server += ["--operating-limit-s", "0"]
    else:
        server = [sys.executable, __file__, "--serve-baseline", str(port)]
    return pinned(server, SERVER_CORE)


async def load(name: str, port: int, args: argparse.Namespace) -> dict[str, Run]:
    if name == "emulator":
        await seed(port)
    return {
        "httpx": await drive_httpx(port, args.httpx_concurrency, args.duration, args.warmup),
        "raw_http11": await drive_raw(port, args.raw_concurrency, args.duration, args.warmup),
    }


def measure(name: str, args: argparse.Namespace, runner: Any) -> dict[str, Run]:
    port = free_port()
    health = f"http://127.0.0.1:{port}/_emulator/health"
    with running(server_command(name, port), health=health):
        runs: dict[str, Run] = runner(load(name, port, args))
    return runs


def report(args: argparse.Namespace, runner: Any) -> dict[str, Any]:
    client_core = pin_self(CLIENT_CORE)
    baseline = measure("baseline", args, runner)
    emulator = measure("emulator", args, runner)
    clients: dict[str, Any] = {}
    for client, concurrency in (
        ("httpx", args.httpx_concurrency),
        ("raw_http11", args.raw_concurrency),
    ):
        base, emu = baseline[client].summary(), emulator[client].summary()
        ratio = emu["requests_per_s"] / base["requests_per_s"] if base["requests_per_s"] else 0.0
        clients[client] = {
            "concurrency": concurrency,
            "baseline": base,
            "emulator": emu,
            "emulator_vs_baseline": round(ratio, 3),
        }
    server = clients["raw_http11"]["emulator"]
    return {
        "benchmark": "emulator_throughput",
        "method": "tasks.task.get",
        "duration_s": args.duration,
        "server_core": SERVER_CORE if can_pin(SERVER_CORE) else None,
        "client_core": client_core,
        "uvicorn": UVICORN_SETTINGS,
        "clients": clients,
        "target_requests_per_s": TARGET_RPS,
        "meets_target": server["requests_per_s"] >= TARGET_RPS and server["errors"] == 0,
    }


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=0.5, help="unmeasured seconds first")
    parser.add_argument("--httpx-concurrency", type=int, default=4, help="httpx workers")
    parser.add_argument("--raw-concurrency", type=int, default=32, help="raw HTTP/1.1 workers")
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    print_json(report(args, runner))


if __name__ == "__main__":
    main()
