"""The report and the export publish their formats and their cursor."""

from __future__ import annotations

import httpx

from b24mw.reports.schemas import XLSX_TYPE


async def test_formats_and_cursor_are_documented(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    report = spec["paths"]["/api/v1/ww/report/deliveries"]["get"]
    ok = report["responses"]["200"]
    assert set(ok["content"]) == {"application/json", "text/csv", XLSX_TYPE}
    assert ok["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DeliveriesReport"
    }
    assert ok["content"]["text/csv"]["example"].startswith("\ufefforder_id,kind,")
    assert "Content-Disposition" in ok["headers"]
    params = {p["name"]: p for p in report["parameters"]}
    assert {"status", "courier_id", "kind", "created_from", "created_to", "format"} <= set(params)
    assert params["format"]["schema"]["$ref"].endswith("/ReportFormat")
    assert {"401", "403", "422"} <= set(report["responses"])

    export = spec["paths"]["/api/v1/ww/export/kmp4"]["get"]
    ok = export["responses"]["200"]
    assert set(ok["content"]) == {"application/json", "text/csv"}
    assert ok["content"]["text/csv"]["example"].startswith("#KMP4_DELIVERY_REPORT,v1\r\n")
    assert {"X-Next-Cursor", "X-Total-Count", "X-Has-More"} <= set(ok["headers"])
    after = next(p for p in export["parameters"] if p["name"] == "after")
    assert "never skips a change" in after["description"]
    schemas = spec["components"]["schemas"]
    assert {"items", "total", "next_cursor", "has_more"} <= set(schemas["Kmp4Page"]["properties"])
    assert set(schemas["ReportTotals"]["properties"]) >= {
        "total_orders",
        "total_amount",
        "total_duration_min",
    }
