"""The order people type into a Bitrix24 task description or comment
(docs/webhooks.md "Writing an order in Bitrix24").

    - SKU-1 | Чехол для телефона | 2 | 490,00
    - SKU-2 | Зарядка USB-C | 1 | 1 290.50
    customer: Иван Петров
    phone: +7 912 345-67-89
    note: позвонить за час

One item a line (``- SKU | name | qty | price``; the dash may be omitted when
the line has the ``|`` separators), optional ``customer:``, ``phone:``,
``note:`` lines (Russian keys ``клиент``, ``телефон``, ``примечание`` too),
a decimal comma or point, spaces between thousands.  Other lines (a greeting,
the ``#instant_order`` tag) are ignored.

The text is Bitrix24 BBCode; it is read as the person saw it
(``kit/bbcode.py``): ``[LIST][*]SKU-1 | …`` is an item line, ``[B]`` and
friends vanish, entities are decoded.  Line numbers in errors count the lines
the person saw.

Total: any text gives a ``ParsedOrder`` and a list of ``LineError``; every
malformed line is reported with its number, nothing raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from b24mw.kit.bbcode import escape, to_plain
from b24mw.kit.phone import normalize_phone

MAX_SKU = 64
MAX_NAME = 255
MAX_CUSTOMER = 255
MAX_NOTE = 4000
MAX_QTY = 1_000_000
MAX_ITEMS = 500
BULLETS = ("-", "–", "—", "*", "•")
KEYS = {
    "customer": "customer",
    "клиент": "customer",
    "покупатель": "customer",
    "phone": "phone",
    "телефон": "phone",
    "тел": "phone",
    "note": "note",
    "примечание": "note",
    "комментарий": "note",
}
_KEY_LINE = re.compile(r"^\s*([^\W\d_]+)\s*:(.*)$")
# 1490 | 1490,5 | 1 490.50 | 1 490,50 (NBSP or narrow NBSP between groups)
_PRICE = re.compile(r"^(\d{1,3}(?:[ \u00a0\u202f]\d{3})+|\d{1,10})(?:[.,](\d{1,2}))?$")
_QTY = re.compile(r"^\d{1,7}$")


@dataclass(frozen=True, slots=True)
class OrderLine:
    sku: str
    name: str
    qty: int
    price: Decimal


@dataclass(frozen=True, slots=True)
class ParsedOrder:
    lines: tuple[OrderLine, ...] = ()
    customer: str | None = None
    phone: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class LineError:
    """``line`` is 1-based; 0 means the text as a whole (e.g. no items at all)."""

    line: int
    field: str
    code: str
    text: str = ""


@dataclass(slots=True)
class ParseResult:
    order: ParsedOrder
    errors: list[LineError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def parse_price(raw: str) -> Decimal | None:
    text = raw.strip().removesuffix("₽").strip()
    match = _PRICE.match(text)
    if match is None:
        return None
    whole = re.sub(r"[ \u00a0\u202f]", "", match.group(1))
    try:
        return Decimal(f"{whole}.{match.group(2) or '0'}").quantize(Decimal("0.01"))
    except InvalidOperation:
        return None


def _item(number: int, text: str, body: str, errors: list[LineError]) -> OrderLine | None:
    cells = [cell.strip() for cell in body.split("|")]
    if len(cells) != 4:
        errors.append(LineError(number, "item", "item.fields", text))
        return None
    sku, name, qty_raw, price_raw = cells
    found: list[LineError] = []
    if not sku or len(sku) > MAX_SKU:
        found.append(LineError(number, "sku", "item.sku", text))
    if not name or len(name) > MAX_NAME:
        found.append(LineError(number, "name", "item.name", text))
    qty = int(qty_raw) if _QTY.match(qty_raw) else 0
    if not 0 < qty <= MAX_QTY:
        found.append(LineError(number, "qty", "item.qty", text))
    price = parse_price(price_raw)
    if price is None:
        found.append(LineError(number, "price", "item.price", text))
    if found or price is None:
        errors.extend(found)
        return None
    return OrderLine(sku, name, qty, price)


def parse_order_text(text: str) -> ParseResult:
    lines: list[OrderLine] = []
    values: dict[str, str] = {}
    errors: list[LineError] = []
    for number, raw in enumerate(to_plain(text).splitlines(), start=1):
        stripped = raw.strip()
        if not stripped:
            continue
        shown = stripped[:200]
        if stripped.startswith(BULLETS):
            body = stripped[1:].strip()
            if body[:1] in BULLETS and body[1:2].isspace() and body[1:].strip()[:1] != "|":
                # A list item whose text starts with its own dash: "[*]- SKU | …"
                # (but "- * | …" is the SKU "*").
                body = body[1:].strip()
            item = _item(number, shown, body, errors)
        else:
            key_line = _KEY_LINE.match(stripped)
            key = KEYS.get(key_line.group(1).casefold()) if key_line else None
            if key_line is not None and key is not None:
                _key_value(number, shown, key, key_line.group(2).strip(), values, errors)
                continue
            if "|" not in stripped:
                continue  # prose, the #instant_order tag, a signature
            item = _item(number, shown, stripped, errors)
        if item is not None:
            lines.append(item)
    if not lines and not any(e.field in ("item", "sku", "name", "qty", "price") for e in errors):
        errors.append(LineError(0, "items", "order.no_items"))
    if len(lines) > MAX_ITEMS:
        errors.append(LineError(0, "items", "order.too_many_items"))
    if "customer" not in values and not any(e.field == "customer" for e in errors):
        errors.append(LineError(0, "customer", "order.no_customer"))
    order = ParsedOrder(
        lines=tuple(lines),
        customer=values.get("customer"),
        phone=values.get("phone"),
        note=values.get("note"),
    )
    return ParseResult(order, errors)


def _key_value(
    number: int, shown: str, key: str, value: str, values: dict[str, str], errors: list[LineError]
) -> None:
    limit = {"customer": MAX_CUSTOMER, "note": MAX_NOTE}.get(key, 64)
    if key in values:
        errors.append(LineError(number, key, "order.repeated", shown))
    elif not value or len(value) > limit:
        errors.append(LineError(number, key, f"order.{key}", shown))
    elif key == "phone":
        try:
            values[key] = normalize_phone(value)
        except ValueError:
            errors.append(LineError(number, key, "order.phone", shown))
    else:
        values[key] = value


def format_price(price: Decimal) -> str:
    return f"{price:.2f}"


def format_order(order: ParsedOrder) -> str:
    """The canonical text of an order; ``parse_order_text`` reads it back."""
    out = [
        f"- {escape(line.sku)} | {escape(line.name)} | {line.qty} | {format_price(line.price)}"
        for line in order.lines
    ]
    for key in ("customer", "phone", "note"):
        value = getattr(order, key)
        if value is not None:
            out.append(f"{key}: {escape(value)}")
    return "\n".join(out)
