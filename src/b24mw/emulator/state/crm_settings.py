"""The CRM keys of ``POST /_emulator/settings``, validated before anything changes.

- ``crm_pipelines``: ``[{"id": 1, "name": "Deliveries", "stages"?: [{"id":
  "NEW", "name"?, "semantics": "P"|"S"|"F"}]}]`` — pipelines over the
  default one (id 0 may be given to replace its stages).  Stage ids may be
  given with or without the ``C<id>:`` prefix.  Each pipeline needs exactly
  one success stage and at least one failure stage, as on a portal.
- ``crm_required_fields``: ``{"<stage id>": ["UF_CRM_DOC", "COMMENTS"]}``.
- ``crm_automation``: ``{"<stage id>": "<stage id>"}`` — entering the first
  stage makes the portal's automation move the deal to the second.
- ``crm_stage_denied``: stage ids the webhook user may not move a deal into.
- ``crm_mode``: 1 classic CRM, 2 Simple CRM (no leads).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from b24mw.emulator.state.crm import DEFAULT_DEAL_STAGES, Pipeline, Stage, default_pipelines


class SettingsError(ValueError):
    pass


def _stages(category_id: int, raw: Any) -> list[dict[str, str]]:
    if raw is None:
        prefix = f"C{category_id}:" if category_id else ""
        return [{"id": prefix + c, "name": n, "semantics": s} for c, n, s in DEFAULT_DEAL_STAGES]
    if not isinstance(raw, list) or not raw:
        raise SettingsError("crm_pipelines: stages must be a non-empty list")
    prefix = f"C{category_id}:" if category_id else ""
    stages: list[dict[str, str]] = []
    for stage in raw:
        if not isinstance(stage, Mapping) or not isinstance(stage.get("id"), str):
            raise SettingsError("crm_pipelines: each stage needs a string id")
        code = stage["id"].strip().upper()
        if not code or (
            prefix and code.startswith("C") and ":" in code and not code.startswith(prefix)
        ):
            raise SettingsError(
                f"crm_pipelines: stage id {stage['id']!r} is not of pipeline {category_id}"
            )
        full = code if code.startswith(prefix) else prefix + code
        semantics = str(stage.get("semantics", "P")).upper()
        if semantics not in ("P", "S", "F"):
            raise SettingsError("crm_pipelines: semantics must be P, S or F")
        stages.append({"id": full, "name": str(stage.get("name") or code), "semantics": semantics})
    kinds = [s["semantics"] for s in stages]
    if kinds.count("S") != 1 or "F" not in kinds:
        raise SettingsError(
            f"crm_pipelines: pipeline {category_id} needs one success (S) and a failure (F) stage"
        )
    if len({s["id"] for s in stages}) != len(stages):
        raise SettingsError(f"crm_pipelines: pipeline {category_id} repeats a stage id")
    return stages


def _pipelines(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise SettingsError("crm_pipelines must be a list of pipelines")
    result: list[dict[str, Any]] = []
    seen: set[int] = set()
    for raw in value:
        if not isinstance(raw, Mapping):
            raise SettingsError("crm_pipelines: each pipeline must be an object")
        category_id = raw.get("id")
        if isinstance(category_id, bool) or not isinstance(category_id, int) or category_id < 0:
            raise SettingsError("crm_pipelines: id must be a non-negative integer")
        if category_id in seen:
            raise SettingsError(f"crm_pipelines: pipeline {category_id} given twice")
        seen.add(category_id)
        name = raw.get("name") or ("General" if category_id == 0 else f"Pipeline {category_id}")
        result.append(
            {
                "id": category_id,
                "name": str(name),
                "stages": _stages(category_id, raw.get("stages")),
            }
        )
    return result


def _string_map(key: str, value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise SettingsError(f"{key} must map stage ids to stage ids")
    return {k.upper(): v.upper() for k, v in value.items()}


def crm_setting(key: str, value: Any) -> Any:
    if key == "crm_pipelines":
        return _pipelines(value)
    if key == "crm_required_fields":
        if not isinstance(value, Mapping) or not all(
            isinstance(v, list) and all(isinstance(f, str) for f in v) for v in value.values()
        ):
            raise SettingsError("crm_required_fields must map stage ids to lists of field names")
        return {str(k).upper(): [f.upper() for f in v] for k, v in value.items()}
    if key == "crm_automation":
        return _string_map(key, value)
    if key == "crm_stage_denied":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SettingsError("crm_stage_denied must be a list of stage ids")
        return [v.upper() for v in value]
    if key == "crm_mode":
        if value not in (1, 2) or isinstance(value, bool):
            raise SettingsError("crm_mode must be 1 (classic) or 2 (simple)")
        return value
    raise SettingsError(f"unknown setting {key!r}")


def build_pipelines(configured: list[dict[str, Any]]) -> dict[int, Pipeline]:
    """The portal's deal pipelines: the default one, overlaid by the settings."""
    pipelines = {p.id: p for p in default_pipelines()}
    for raw in configured:
        category_id = int(raw["id"])
        pipelines[category_id] = Pipeline(
            id=category_id,
            name=str(raw["name"]),
            sort=300 if category_id == 0 else 100 + category_id,
            stages=[
                Stage(s["id"], s["name"], s["semantics"], (n + 1) * 10)
                for n, s in enumerate(raw["stages"])
            ],
        )
    return pipelines
