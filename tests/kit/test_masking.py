from __future__ import annotations

import json

import pytest
import structlog

from b24mw.kit.logging import configure_logging
from b24mw.kit.masking import mask_personal, mask_phones


@pytest.mark.parametrize(
    "text", ["+79123456789", "89123456789", "+7 (912) 345-67-89", "call 8 912 345 67 89 now"]
)
def test_phones_are_masked_in_free_text(text: str) -> None:
    masked = mask_phones(text)
    assert "345" not in masked and "+7******" in masked


def test_personal_keys_are_hidden_and_structure_kept() -> None:
    value = {"address": "Lenina 1", "customer_name": "Ivan", "items": [{"sku": "A-1"}], "qty": 2}
    masked = mask_personal(value)
    assert masked["address"] != "Lenina 1" and "Lenina" not in masked["address"]
    assert masked["items"] == [{"sku": "A-1"}] and masked["qty"] == 2


def test_log_lines_are_json_with_phones_masked(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", json_output=True)
    structlog.get_logger("t").info("sms", to="+79123456789", note="or 8 912 345 67 89")
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["event"] == "sms" and "level" in line and "timestamp" in line
    assert "3456789" not in json.dumps(line)


@pytest.mark.parametrize(
    "text",
    ["batch-521b8891-0471-458a-bab0-7ddfbd5182df", "521b8891-0471-458a", "id a89123456789b"],
)
def test_ids_that_contain_phone_like_digits_are_left_alone(text: str) -> None:
    assert mask_phones(text) == text


def test_a_phone_after_punctuation_is_still_masked() -> None:
    assert mask_phones("tel:89123456789, (+79123456789)") == "tel:+7******67**, (+7******67**)"
