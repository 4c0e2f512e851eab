"""Texts b24mw writes into Bitrix24 for people (SPEC §6): Russian by default,
English with ``B24MW_LOCALE=en``.

One table per language with the same keys, so a missing translation is caught
by the test that compares the key sets, not by a user reading ``KeyError``.
Placeholders use ``str.format`` names.
"""

from __future__ import annotations

from typing import Any

DEFAULT_LOCALE = "ru"

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        # Returns (SPEC §4.1)
        "return.created": "Возврат {id} создан: позиций {lines}, штук {qty}. Статус: {status}",
        "return.status_changed": "Возврат {id}: {from_status} → {to_status}",
        "return.status.pending": "ожидает решения",
        "return.status.accepted": "принят",
        "return.status.rejected": "отклонён",
        "return.status.cancelled": "отменён",
        "return.comment_line": "Комментарий: {comment}",
        "return.line": "- {sku} × {qty} ({reason})",
        "return.subtask.title": "Вернуть товар клиенту",
        "return.subtask.description": "Возврат {id} отклонён. Вернуть клиенту:\n{lines}",
        "return.subtask.no_responsible": (
            "Не удалось создать подзадачу возврата: у курьера {courier} нет пользователя Битрикс24."
            " Назначьте ответственного вручную."
        ),
        # Walking Warehouse orders and deliveries (SPEC §4.3, §4.4)
        "order.status_changed": "Заказ {id}: {from_status} → {to_status}",
        "order.note": "Комментарий: {note}",
        "order.assigned": "Заказ {id}: назначен курьер {courier}",
        "order.unassigned": "Заказ {id}: курьер снят",
        "order.declined": "Заказ {id}: курьер {courier} отказался от заказа",
        "delivery.title": "Доставка {external_id}: {customer}",
        "delivery.address": "Адрес: {address}",
        "delivery.phone": "Телефон: {phone}",
        "delivery.customer": "Получатель: {customer}",
        "delivery.cod": "Наложенный платёж: {amount} {currency}",
        "delivery.price": "Стоимость доставки: {amount} {currency}",
        "delivery.total": "Итого: {amount} {currency}",
        "delivery.lines": "Товары:",
        "delivery.line": "- {sku} | {name} | {qty} × {price}",
        "delivery.notes": "Примечание: {notes}",
    },
    "en": {
        "return.created": "Return {id} created: {lines} line(s), {qty} item(s). Status: {status}",
        "return.status_changed": "Return {id}: {from_status} → {to_status}",
        "return.status.pending": "pending",
        "return.status.accepted": "accepted",
        "return.status.rejected": "rejected",
        "return.status.cancelled": "cancelled",
        "return.comment_line": "Comment: {comment}",
        "return.line": "- {sku} × {qty} ({reason})",
        "return.subtask.title": "Return the goods to the customer",
        "return.subtask.description": (
            "Return {id} was rejected. Take the goods back to the customer:\n{lines}"
        ),
        "return.subtask.no_responsible": (
            "Could not create the return subtask: courier {courier} has no Bitrix24 user."
            " Assign someone manually."
        ),
        "order.status_changed": "Order {id}: {from_status} → {to_status}",
        "order.note": "Note: {note}",
        "order.assigned": "Order {id}: courier {courier} assigned",
        "order.unassigned": "Order {id}: courier removed",
        "order.declined": "Order {id}: courier {courier} declined the order",
        "delivery.title": "Delivery {external_id}: {customer}",
        "delivery.address": "Address: {address}",
        "delivery.phone": "Phone: {phone}",
        "delivery.customer": "Recipient: {customer}",
        "delivery.cod": "Cash on delivery: {amount} {currency}",
        "delivery.price": "Delivery price: {amount} {currency}",
        "delivery.total": "Total: {amount} {currency}",
        "delivery.lines": "Items:",
        "delivery.line": "- {sku} | {name} | {qty} × {price}",
        "delivery.notes": "Notes: {notes}",
    },
}


def t(key: str, locale: str | None = None, **values: Any) -> str:
    """The text for ``key`` in ``locale`` (unknown locales fall back to Russian)."""
    table = TEXTS.get(locale or DEFAULT_LOCALE, TEXTS[DEFAULT_LOCALE])
    return table[key].format(**values)
