"""What a customer's message names: an order or delivery number, a return id,
a 1C document number (docs/support.md, "Link patterns").

A bare number never counts: customers write phone numbers, sums and dates far
more often than order numbers.  A number links only right after a keyword
("order", "заказ", "delivery", "доставка", "№"...), with nothing but ``#``,
``№``, ``no.`` or spaces between; it has at most 10 digits (a phone without
its ``+`` has 11) and is not followed by a decimal part, a date's next
field or a phone's next group.  Return ids are UUIDs, which nothing else in a chat looks like.  A
1C document number follows "1C"/"1С"/"документ"/"doc" and must exist in
``orders.external_id_1c`` to link (checked by the caller).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

_SEP = r"[\s:]*(?:(?:#|№|no\.|nr\.?|номер)[\s:]*)?"
# Not part of a longer run of digits: a decimal part, a date's next field, a
# phone's "(912)" or its next group ("8 912 345-67-89") all disqualify it.
_NUMBER = r"(\d{1,10})(?!\d)(?![.,/-]\d)(?!\s*\(\s*\d)(?![\s-]+\d)"
_ORDER = re.compile(r"(?<![\w])(?:order|заказ[а-яё]*|№)" + _SEP + _NUMBER, re.IGNORECASE)
_DELIVERY = re.compile(
    r"(?<![\w])(?:delivery|доставк[а-яё]*|shipment|отправлени[а-яё]*)" + _SEP + _NUMBER,
    re.IGNORECASE,
)
_UUID = re.compile(
    r"(?<![0-9a-f-])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9a-f-])",
    re.IGNORECASE,
)
_DOC_1C = re.compile(
    r"(?<![\w])(?:1c|1с|документ[а-яё]*|doc(?:ument)?)"
    + _SEP
    + r"([A-Za-zА-Яа-яЁё0-9][\w/-]{2,63})",
    re.IGNORECASE,
)


@dataclass
class Mentions:
    # "order 123": an instant order or a delivery with that id (the caller checks which exist).
    orders: set[int] = field(default_factory=set)
    deliveries: set[int] = field(default_factory=set)
    returns: set[uuid.UUID] = field(default_factory=set)
    documents_1c: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.orders or self.deliveries or self.returns or self.documents_1c)


def find(text: str) -> Mentions:
    """Every reference in ``text`` (plain text, as the person saw it)."""
    found = Mentions()
    found.orders = {int(m.group(1)) for m in _ORDER.finditer(text) if int(m.group(1)) > 0}
    found.deliveries = {int(m.group(1)) for m in _DELIVERY.finditer(text) if int(m.group(1)) > 0}
    found.returns = {uuid.UUID(m.group(0)) for m in _UUID.finditer(text)}
    found.documents_1c = {m.group(1) for m in _DOC_1C.finditer(text)}
    return found
