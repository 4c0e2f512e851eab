"""``b24mw serve`` that dies between commit and answer, for the API drill.

A request carrying ``X-Drill: die-after-commit`` is run and committed as any
other (the change and its stored answer together), then the process
SIGKILLs itself before a byte of the answer is sent — as a crash, an OOM kill
or a lost machine would at the worst moment.

    python -m tests.drills.dying_api --port P      (B24MW_* settings as for serve)
"""

from __future__ import annotations

import argparse
import os
import signal
from typing import Any

import uvicorn

from b24mw.kit import uow

_run = uow.UnitOfWorkMiddleware._run


async def _then_die(self: Any, unit: Any, scope: Any, receive: Any) -> Any:
    answer = await _run(self, unit, scope, receive)
    if (b"x-drill", b"die-after-commit") in scope["headers"]:
        os.kill(os.getpid(), signal.SIGKILL)
    return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uow.UnitOfWorkMiddleware._run = _then_die  # type: ignore[method-assign]
    uvicorn.run(
        "b24mw.app:create_app",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        log_level="warning",
        log_config=None,
    )


if __name__ == "__main__":
    main()
