"""The README's settings table is generated from ``Settings`` and cannot drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from b24mw.kit import settings_doc
from b24mw.settings import Settings


def test_every_setting_says_what_it_means() -> None:
    missing = [name for name, info in Settings.model_fields.items() if not info.description]
    assert missing == []


def test_readme_table_is_the_generated_one() -> None:
    readme = settings_doc.README.read_text(encoding="utf-8")
    assert settings_doc.section_of(readme) == settings_doc.render(), (
        "README.md's settings table differs from src/b24mw/settings.py: "
        "run python -m b24mw.kit.settings_doc --write"
    )


def test_the_table_names_each_setting_once_with_its_default_and_bounds() -> None:
    table = settings_doc.render()
    lines = table.splitlines()[2:]
    assert len(lines) == len(Settings.model_fields)
    row = next(line for line in lines if line.startswith("| `B24MW_B24_RPS` |"))
    assert row.split(" | ")[1:3] == ["2", "> 0, ≤ 1000"]
    row = next(line for line in lines if line.startswith("| `B24MW_WEBHOOK_AUTH` |"))
    assert row.split(" | ")[1:3] == ["`hmac`", "`hmac`, `token`, `both`"]
    row = next(line for line in lines if line.startswith("| `B24MW_WEBHOOK_SECRETS` |"))
    assert row.split(" | ")[1] == "—" and row.endswith("never logged |")


def test_check_fails_on_a_stale_table_and_write_repairs_it(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    current = settings_doc.README.read_text(encoding="utf-8")
    stale = current.replace("| `B24MW_B24_RPM` | 120 |", "| `B24MW_B24_RPM` | 60 |")
    assert stale != current
    readme.write_text(stale, encoding="utf-8")
    assert settings_doc.main(["--check", "--readme", str(readme)]) == 1
    assert settings_doc.main(["--write", "--readme", str(readme)]) == 0
    assert settings_doc.main(["--check", "--readme", str(readme)]) == 0
    assert readme.read_text(encoding="utf-8") == current


def test_a_readme_without_the_markers_is_an_error() -> None:
    with pytest.raises(ValueError, match="no generated settings table"):
        settings_doc.section_of("# README\n")
