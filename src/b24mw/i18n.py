"""Texts b24mw writes into Bitrix24 for people (docs/webhooks.md, README
"Configuration"): Russian by default, English with ``B24MW_LOCALE=en``.

One table per language with the same keys, so a missing translation is caught
by the test that compares the key sets, not by a user reading ``KeyError``.
Placeholders use ``str.format`` names.
"""

from __future__ import annotations

from typing import Any

DEFAULT_LOCALE = "ru"

TEXTS: dict[str, dict[str, str]] = {
    "ru": {
        # Returns (README "Resources")
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
        # Walking Warehouse orders and deliveries (README "Resources", the status table)
        "order.status_changed": "Заказ {id}: {from_status} → {to_status}",
        "order.note": "Комментарий: {note}",
        "crm.stage_refused": (
            "Сделка {deal}: Битрикс24 не перевёл её в стадию {stage}: {reason}."
            " Заполните нужные поля сделки, затем повторите: b24mw dlq replay {job}"
        ),
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
        # Orders from Bitrix24 tasks and comments (docs/webhooks.md; webhooks/processor.py)
        "webhook.order_created": (
            "Заказ {id} создан: позиций {lines}, сумма {total} {currency}. Курьер: {courier}"
        ),
        "webhook.order_rejected": "Заказ не создан. Исправьте и отправьте снова:",
        "webhook.error_line": "- строка {line}: {message}",
        "webhook.error": "- {message}",
        "webhook.error.item.fields": (
            "позиция пишется так: «- артикул | название | количество | цена»"
        ),
        "webhook.error.item.sku": "нет артикула (или он длиннее 64 символов)",
        "webhook.error.item.name": "нет названия (или оно длиннее 255 символов)",
        "webhook.error.item.qty": "количество должно быть целым числом больше нуля",
        "webhook.error.item.price": "цена должна быть числом не меньше нуля, например 1490,00",
        "webhook.error.order.no_items": (
            "нет ни одной позиции «- артикул | название | количество | цена»"
        ),
        "webhook.error.order.too_many_items": "слишком много позиций (не больше 500)",
        "webhook.error.order.no_customer": "не указан клиент: добавьте строку «customer: имя»",
        "webhook.error.order.customer": "имя клиента пустое или длиннее 255 символов",
        "webhook.error.order.phone": "телефон должен быть в формате +7XXXXXXXXXX",
        "webhook.error.order.note": "примечание пустое или длиннее 4000 символов",
        "webhook.error.order.repeated": "эта строка уже была выше",
        "webhook.error.courier.unknown": (
            "пользователь Битрикс24 {user} не связан ни с одним активным курьером"
        ),
        "webhook.error.order.duplicate": "по этой задаче для этого курьера уже есть заказ {id}",
        "webhook.error.order.invalid": "заказ не прошёл проверку ({field}: {detail})",
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
        "crm.stage_refused": (
            "Deal {deal}: Bitrix24 refused to move it to stage {stage}: {reason}."
            " Fill in the deal's required fields, then retry: b24mw dlq replay {job}"
        ),
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
        "webhook.order_created": (
            "Order {id} created: {lines} line(s), total {total} {currency}. Courier: {courier}"
        ),
        "webhook.order_rejected": "The order was not created. Please fix and send again:",
        "webhook.error_line": "- line {line}: {message}",
        "webhook.error": "- {message}",
        "webhook.error.item.fields": "an item is written as “- SKU | name | qty | price”",
        "webhook.error.item.sku": "the SKU is missing (or longer than 64 characters)",
        "webhook.error.item.name": "the name is missing (or longer than 255 characters)",
        "webhook.error.item.qty": "the quantity must be a whole number above zero",
        "webhook.error.item.price": "the price must be a number of zero or more, e.g. 1490.00",
        "webhook.error.order.no_items": "there is no item line “- SKU | name | qty | price”",
        "webhook.error.order.too_many_items": "too many items (500 at most)",
        "webhook.error.order.no_customer": "no customer: add a line “customer: name”",
        "webhook.error.order.customer": "the customer name is empty or over 255 characters",
        "webhook.error.order.phone": "the phone must look like +7XXXXXXXXXX",
        "webhook.error.order.note": "the note is empty or over 4000 characters",
        "webhook.error.order.repeated": "this line repeats an earlier one",
        "webhook.error.courier.unknown": "Bitrix24 user {user} is not an active courier",
        "webhook.error.order.duplicate": "this task already has order {id} for this courier",
        "webhook.error.order.invalid": "the order failed validation ({field}: {detail})",
    },
}


def t(key: str, locale: str | None = None, **values: Any) -> str:
    """The text for ``key`` in ``locale`` (unknown locales fall back to Russian)."""
    table = TEXTS.get(locale or DEFAULT_LOCALE, TEXTS[DEFAULT_LOCALE])
    return table[key].format(**values)
