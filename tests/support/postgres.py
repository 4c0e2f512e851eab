"""A throw-away PostgreSQL server started from the installed binaries.

Tests never depend on a server left running: each test session initialises a
cluster in a temporary directory, starts it on a free loopback port and
removes it afterwards.  PostgreSQL refuses to run as root, so as root the
server runs as the ``postgres`` system user (created by Debian's package).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.support.net import free_port


def _bindir() -> Path:
    if explicit := os.environ.get("B24MW_TEST_PG_BINDIR"):
        return Path(explicit)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1])
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise RuntimeError(
        "PostgreSQL server binaries not found: install Debian's 'postgresql' package "
        "(make test does) or set B24MW_TEST_PG_BINDIR"
    )


@dataclass
class PostgresServer:
    root: Path
    port: int
    bindir: Path
    run_as: str | None

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://b24mw@127.0.0.1:{self.port}/{database}"

    def _cmd(self, *args: str) -> list[str]:
        if self.run_as:
            return ["runuser", "-u", self.run_as, "--", *args]
        return list(args)

    def _run(self, *args: str) -> None:
        subprocess.run(self._cmd(*args), check=True, capture_output=True, timeout=120)

    @classmethod
    def start(cls) -> PostgresServer:
        root = Path(tempfile.mkdtemp(prefix="b24mw-pg-"))
        run_as = None
        if os.geteuid() == 0:
            run_as = "postgres"
            user = pwd.getpwnam(run_as)
            os.chown(root, user.pw_uid, user.pw_gid)
        server = cls(root=root, port=free_port(), bindir=_bindir(), run_as=run_as)
        server._run(
            str(server.bindir / "initdb"),
            "-D",
            str(server.datadir),
            "-U",
            "b24mw",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )
        server.start_again()
        return server

    def start_again(self) -> None:
        """Start the (stopped) server on its data directory and port."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=300 -c shared_buffers=64MB"
        )
        self._pg_ctl("-o", options, "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")

    def begin_shutdown(self) -> None:
        """A smart shutdown that does not wait: while any session stays open,
        the server refuses new connections as "shutting down" (SQLSTATE 57P03)."""
        self._pg_ctl("-m", "smart", "-W", "stop")

    def finish_shutdown(self) -> None:
        """Stop now (a fast shutdown ends the remaining sessions), keep the data."""
        self._pg_ctl("-m", "fast", "-w", "-t", "60", "stop")

    def _pg_ctl(self, *args: str) -> None:
        # The server's output goes to its log file, never to our pipes, or the
        # call would wait for the server.
        subprocess.run(
            self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args),
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )

    def createdb(self, name: str) -> None:
        self._run(
            str(self.bindir / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "b24mw",
            name,
        )

    def restart(self) -> None:
        """Restart in place (same port and data)."""
        self._pg_ctl("-l", str(self.root / "server.log"), "-m", "fast", "-w", "-t", "60", "restart")

    def running(self) -> bool:
        status = [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "status"]
        return subprocess.run(self._cmd(*status), capture_output=True, timeout=60).returncode == 0

    def stop(self) -> None:
        try:
            if self.running():  # a test may have shut it down already
                self._pg_ctl("-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
