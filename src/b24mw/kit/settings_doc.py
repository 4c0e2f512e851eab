"""The README's table of every ``B24MW_*`` setting, generated from ``Settings``.

Each field's ``description`` is its meaning; the default and the allowed
values come from the field itself, so the table cannot drift from the code
(``tests/kit/test_settings_doc.py`` fails when the README's copy differs).

    python -m b24mw.kit.settings_doc            # print the table
    python -m b24mw.kit.settings_doc --write    # replace it in README.md
    python -m b24mw.kit.settings_doc --check    # exit 1 when README.md differs
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from b24mw.settings import Settings

BEGIN = (
    "<!-- settings:begin (generated from src/b24mw/settings.py:"
    " python -m b24mw.kit.settings_doc --write) -->"
)
END = "<!-- settings:end -->"
FIX = "python -m b24mw.kit.settings_doc --write"
README = Path(__file__).resolve().parents[3] / "README.md"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _default(info: FieldInfo) -> str:
    value = info.default
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float):
        return _number(value)
    return f"`{value}`"


def _allowed(info: FieldInfo) -> str:
    """The values a setting accepts beyond its type: choices or bounds."""
    annotation = info.annotation
    members = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else ()
    for candidate in (annotation, *members):
        if typing.get_origin(candidate) is typing.Literal:
            return ", ".join(f"`{value}`" for value in typing.get_args(candidate))
    if info.annotation is bool:
        return "`true`, `false`"
    low = high = ""
    for rule in info.metadata:
        if isinstance(rule, annotated_types.Ge):
            low = f"≥ {_number(rule.ge)}"  # type: ignore[arg-type]
        elif isinstance(rule, annotated_types.Gt):
            low = f"> {_number(rule.gt)}"  # type: ignore[arg-type]
        elif isinstance(rule, annotated_types.Le):
            high = f"≤ {_number(rule.le)}"  # type: ignore[arg-type]
        elif isinstance(rule, annotated_types.Lt):
            high = f"< {_number(rule.lt)}"  # type: ignore[arg-type]
    return ", ".join(part for part in (low, high) if part)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _meaning(info: FieldInfo) -> str:
    text = _cell(info.description or "")
    members = typing.get_args(info.annotation) or (info.annotation,)
    if SecretStr in members:
        text += "; never logged"
    return text


def rows() -> list[tuple[str, str, str, str]]:
    fields: dict[str, Any] = Settings.model_fields
    return [
        (f"`B24MW_{name.upper()}`", _default(info), _allowed(info), _meaning(info))
        for name, info in fields.items()
    ]


def render() -> str:
    lines = ["| Setting | Default | Accepts | Meaning |", "|---|---|---|---|"]
    lines += [
        f"| {name} | {default} | {allowed} | {meaning} |"
        for name, default, allowed, meaning in rows()
    ]
    return "\n".join(lines)


def section_of(text: str) -> str:
    """What stands between the markers in ``text``."""
    try:
        start = text.index(BEGIN) + len(BEGIN)
        end = text.index(END, start)
    except ValueError:
        raise ValueError(f"README.md has no generated settings table ({BEGIN} … {END})") from None
    return text[start:end].strip("\n")


def with_table(text: str) -> str:
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END, start)
    return text[:start] + "\n" + render() + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the B24MW_* settings table of README.md")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="replace the table in README.md")
    mode.add_argument("--check", action="store_true", help="exit 1 when README.md differs")
    parser.add_argument("--readme", type=Path, default=README, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not (args.write or args.check):
        print(render())
        return 0
    text = args.readme.read_text(encoding="utf-8")
    if args.check:
        if section_of(text) != render():
            print("README.md: the settings table is stale; run " + FIX)
            return 1
        return 0
    args.readme.write_text(with_table(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
