"""A stand-in for 1C in ``b24mw demo``: it takes the hand-offs b24mw POSTs to
``B24MW_ONEC_URL`` and writes each one as a JSON line, so the demo can show
what 1C received.  It decides nothing: in the demo 1C answers through the API
(``PATCH /returns/{id}``), as the real one does.

    python -m b24mw.demo.onec --port 8095 --record var/demo/onec.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# The headers worth showing: how 1C would deduplicate and trace a hand-off.
KEPT_HEADERS = ("idempotency-key", "x-request-id")


def create_app(record: Path) -> Starlette:
    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def receive(request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, 400)
        entry = {
            "received_at": time.time(),
            "path": request.url.path,
            "headers": {k: request.headers[k] for k in KEPT_HEADERS if k in request.headers},
            "body": body,
        }
        with record.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/{path:path}", receive, methods=["POST"]),
        ]
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="1C stand-in for b24mw demo")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", type=Path, required=True, help="JSON-lines file to append to")
    args = parser.parse_args()
    uvicorn.run(create_app(args.record), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
