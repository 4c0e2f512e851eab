"""The order text people type in Bitrix24: parsed, or every bad line reported."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from b24mw.webhooks.order_text import (
    LineError,
    OrderLine,
    ParsedOrder,
    format_order,
    parse_order_text,
)

EXAMPLE = """Заказ для клиента, #instant_order
- SKU-1 | Чехол для телефона | 2 | 490,00
- SKU-2 | Зарядка USB-C | 1 | 1 290.5
SKU-3 | Кабель | 3 | 99
customer: Иван Петров
Телефон: 8 (912) 345-67-89
note: позвонить за час
"""


def test_documented_example_parses() -> None:
    result = parse_order_text(EXAMPLE)
    assert result.errors == []
    assert result.order == ParsedOrder(
        lines=(
            OrderLine("SKU-1", "Чехол для телефона", 2, Decimal("490.00")),
            OrderLine("SKU-2", "Зарядка USB-C", 1, Decimal("1290.50")),
            OrderLine("SKU-3", "Кабель", 3, Decimal("99.00")),
        ),
        customer="Иван Петров",
        phone="+79123456789",
        note="позвонить за час",
    )


def test_every_malformed_line_is_reported_with_its_number() -> None:
    text = "\n".join(
        [
            "- A | Thing | 2 | 10",  # 1 fine
            "- B | Thing | two | 10",  # 2 qty
            "- C | Thing | 1",  # 3 fields
            "- | | 0 | -5",  # 4 sku, name, qty, price
            "- D | Thing | 1 | 1.234",  # 5 price: three decimals
            "customer: Анна",  # 6
            "phone: 12345",  # 7 phone
            "customer: Другая",  # 8 repeated
        ]
    )
    result = parse_order_text(text)
    assert [(e.line, e.field, e.code) for e in result.errors] == [
        (2, "qty", "item.qty"),
        (3, "item", "item.fields"),
        (4, "sku", "item.sku"),
        (4, "name", "item.name"),
        (4, "qty", "item.qty"),
        (4, "price", "item.price"),
        (5, "price", "item.price"),
        (7, "phone", "order.phone"),
        (8, "customer", "order.repeated"),
    ]
    assert result.errors[0].text == "- B | Thing | two | 10"
    assert [line.sku for line in result.order.lines] == ["A"]


def test_text_without_items_or_customer_says_so() -> None:
    result = parse_order_text("Привет! Нужен заказ.")
    assert result.errors == [
        LineError(0, "items", "order.no_items"),
        LineError(0, "customer", "order.no_customer"),
    ]


@given(st.text(max_size=600))
def test_parser_never_raises(text: str) -> None:
    result = parse_order_text(text)
    assert all(isinstance(e, LineError) for e in result.errors)
    assert result.ok == (not result.errors)


_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
field_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="|" + _LINE_BREAKS),
    min_size=1,
    max_size=30,
).filter(lambda s: s == s.strip() and s != "")
prices = st.decimals(min_value=0, max_value=Decimal("9999999999.99"), places=2).map(
    lambda d: d.quantize(Decimal("0.01"))
)
# "- - A | …" reads as a list item with its own dash ("[*]- A | …"): a SKU that
# starts with a bullet and a space cannot be written unambiguously.
skus = field_text.filter(lambda s: not (s[:1] in "-–—*•" and s[1:2].isspace()))
lines = st.builds(OrderLine, skus, field_text, st.integers(1, 1_000_000), prices)
phones = st.from_regex(r"\+7[0-9]{10}", fullmatch=True)
orders = st.builds(
    ParsedOrder,
    lines=st.lists(lines, min_size=1, max_size=8).map(tuple),
    customer=field_text,
    phone=st.none() | phones,
    note=st.none() | field_text,
)


@given(orders)
def test_format_then_parse_gives_the_order_back(order: ParsedOrder) -> None:
    result = parse_order_text(format_order(order))
    assert result.errors == []
    assert result.order == order


# ---------------------------------------------------------------- BBCode
# What a person's editor stores for the order they see: the same order, however
# it is decorated.

_INLINE = ["B", "I", "U", "S", "COLOR=#cc0000", "SIZE=14", "FONT=Arial", "URL=https://x.ru"]
_BLOCK = ["P", "QUOTE", "LEFT", "CENTER"]


def _wrap(draw: st.DrawFn, text: str, tags: list[str]) -> str:
    tag = draw(st.sampled_from(tags))
    name = tag.split("=", 1)[0]
    return f"[{tag}]{text}[/{name}]"


@st.composite
def _decorated(draw: st.DrawFn, order: ParsedOrder) -> str:
    """``format_order(order)`` as an editor might store it: inline markup around
    cells and lines, paragraphs, the items as a [LIST], [BR] for line breaks."""
    canonical = format_order(order).split("\n")
    items, rest = canonical[: len(order.lines)], canonical[len(order.lines) :]

    def cell_markup(line: str) -> str:
        cells = line.split(" | ")
        return " | ".join(
            _wrap(draw, c, _INLINE) if c and draw(st.booleans()) else c for c in cells
        )

    body = [cell_markup(item.removeprefix("- ")) for item in items]
    if draw(st.booleans()):
        as_list = "".join(f"[*]{b}" for b in body)
        out = [f"[LIST{draw(st.sampled_from(['', '=1']))}]{as_list}[/LIST]"]
    else:
        out = [f"- {b}" for b in body]
    for line in rest:
        key, value = line.split(": ", 1)
        if draw(st.booleans()):
            value = _wrap(draw, value, _INLINE)
        line = f"{_wrap(draw, key, _INLINE) if draw(st.booleans()) else key}: {value}"
        out.append(_wrap(draw, line, _BLOCK) if draw(st.booleans()) else line)
    greeting = draw(st.sampled_from(["", "[B]Заказ[/B] #instant_order", "[USER=5]Анна[/USER]"]))
    joined = draw(st.sampled_from(["\n", "[BR]", "\r\n"])).join(out)
    return f"{greeting}\n{joined}" if greeting else joined


@given(st.data())
def test_any_bbcode_decoration_parses_to_the_same_order(data: st.DataObject) -> None:
    order = data.draw(orders)
    result = parse_order_text(data.draw(_decorated(order)))
    assert result.errors == []
    assert result.order == order


def test_a_sku_that_is_a_bullet_character_is_kept() -> None:
    # Found by the property test above: "- * | …" is the SKU "*", not a second bullet.
    result = parse_order_text("- * | 0 | 1 | 0.00\ncustomer: 0")
    assert result.errors == []
    assert result.order.lines == (OrderLine("*", "0", 1, Decimal("0.00")),)


def test_list_items_become_order_lines_not_skus_with_markup() -> None:
    stored = (
        "[P][B]Заказ[/B][/P][LIST][*]SKU-1 | [I]Чехол[/I] | 2 | 490,00"
        "[*]- SKU-2 | Кабель &amp; адаптер | 1 | 99[/LIST]"
        "[P]customer: [USER=17]Иван Петров[/USER][/P]"
    )
    result = parse_order_text(stored)
    assert result.errors == []
    assert result.order.lines == (
        OrderLine("SKU-1", "Чехол", 2, Decimal("490.00")),
        OrderLine("SKU-2", "Кабель & адаптер", 1, Decimal("99.00")),
    )
    assert result.order.customer == "Иван Петров"
