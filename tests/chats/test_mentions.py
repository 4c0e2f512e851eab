"""Link patterns: what counts as naming an order, a delivery, a return or a
1C document, and what never does (phones, sums, dates)."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from b24mw.support.mentions import find

WORDS = st.sampled_from(
    [
        "привет",
        "когда",
        "курьер",
        "приедет",
        "спасибо",
        "hello",
        "please",
        "today",
        "сумма",
        "на",
        "в",
        "",
    ]
)
DIGITS = st.integers(min_value=0, max_value=9)


@st.composite
def phones(draw: st.DrawFn) -> str:
    number = "".join(str(draw(DIGITS)) for _ in range(10))
    style = draw(st.sampled_from(["+7{}", "8{}", "+7 ({}) ", "8 ({})"]))
    if "(" in style:
        return style.format(number[:3]) + f"{number[3:6]}-{number[6:8]}-{number[8:]}"
    return style.format(number)


@st.composite
def sums(draw: st.DrawFn) -> str:
    whole = draw(st.integers(min_value=1, max_value=999_999))
    cents = draw(st.integers(min_value=0, max_value=99))
    sep = draw(st.sampled_from([",", "."]))
    unit = draw(st.sampled_from([" руб", " ₽", " RUB", ""]))
    return f"{whole}{sep}{cents:02d}{unit}"


@st.composite
def dates(draw: st.DrawFn) -> str:
    day = draw(st.integers(min_value=1, max_value=28))
    month = draw(st.integers(min_value=1, max_value=12))
    year = draw(st.integers(min_value=2000, max_value=2030))
    return draw(st.sampled_from([f"{day:02d}.{month:02d}.{year}", f"{year}-{month:02d}-{day:02d}"]))


NOISE = st.one_of(phones(), sums(), dates(), WORDS)
# The words that make a number an order number, placed right before the noise.
KEYWORDS = st.sampled_from(["заказ", "Заказ №", "order", "order #", "доставка", "delivery", ""])


@given(st.lists(NOISE, min_size=1, max_size=8), KEYWORDS)
def test_phones_sums_and_dates_are_never_references(parts: list[str], keyword: str) -> None:
    text = keyword + " " + " ".join(parts)
    found = find(text)
    assert not found.orders and not found.deliveries and not found.returns, text


@given(st.lists(WORDS, max_size=5), st.integers(min_value=1, max_value=9_999_999_999))
def test_an_order_number_after_its_keyword_is_found(words: list[str], number: int) -> None:
    text = " ".join([*words, f"мой заказ {number}", *words])
    assert number in find(text).orders


@given(st.lists(NOISE, max_size=4), st.uuids())
def test_a_return_id_is_found_anywhere(parts: list[str], return_id: uuid.UUID) -> None:
    text = " ".join([*parts, f"возврат {return_id}".upper(), *parts])
    assert find(text).returns == {return_id}


def test_examples() -> None:
    assert find("where is my order 123").orders == {123}
    assert find("Заказ №45, доставка 7").deliveries == {7}
    assert find("Заказ №45, доставка 7").orders == {45}
    assert find("документ ЗК-000123").documents_1c == {"ЗК-000123"}
    assert not find("позвоните 89123456789")
    assert not find("order 89123456789")  # an 11-digit phone is not an order
    assert not find("заказ на 1490,00 руб")
    assert not find("reorder 123")
