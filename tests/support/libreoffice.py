"""LibreOffice, headless, as the spreadsheet a manager opens our files in.

``make test`` installs Debian's ``libreoffice-calc-nogui`` (as it installs
PostgreSQL); without it the tests that need it fail with this message, they
are not skipped.  Each conversion gets its own profile directory, so parallel
runs (other engineers' included) never share a LibreOffice instance.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

# Comma, double quote, UTF-8, from line 1 (LibreOffice's CSV filter tokens).
CSV_IMPORT = "CSV:44,34,76,1"


def soffice() -> str:
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        raise RuntimeError(
            "LibreOffice not found: install Debian's 'libreoffice-calc-nogui' (make test does)"
        )
    return found


def convert(source: Path, target: str, outdir: Path, *, infilter: str | None = None) -> Path:
    """``source`` converted to ``target`` (an extension, e.g. ``xlsx``) in ``outdir``."""
    outdir.mkdir(parents=True, exist_ok=True)
    command = [
        soffice(),
        f"-env:UserInstallation=file://{outdir / 'profile'}",
        "--headless",
        "--norestore",
    ]
    if infilter:
        command.append(f"--infilter={infilter}")
    command += ["--convert-to", target, "--outdir", str(outdir), str(source)]
    subprocess.run(command, check=True, capture_output=True, timeout=180)
    result = outdir / f"{source.stem}.{target.split(':')[0]}"
    if not result.exists():
        raise RuntimeError(f"LibreOffice wrote no {result.name}")
    return result
