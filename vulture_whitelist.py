"""Names vulture (``make lint``) must not report as dead code, with the reason.

Generated first with ``vulture --make-whitelist`` and sorted by reason; add a
name here only when something outside our code uses it.  ``_`` stands for
any object (vulture's whitelist convention).
"""

# ruff: noqa
_ = object()

# Fields of API response models: Pydantic reads them to build every answer
# (and the OpenAPI document); no Python code names them.
total_items  # unused variable (src/b24mw/kit/pagination.py:213)
total_pages  # unused variable (src/b24mw/kit/pagination.py:217)
total_items_estimated  # unused variable (src/b24mw/kit/pagination.py:218)
age_s  # unused variable (src/b24mw/admin/schemas.py:40)
due_now  # unused variable (src/b24mw/admin/schemas.py:46)
configured_rps  # unused variable (src/b24mw/admin/schemas.py:54)
configured_rpm  # unused variable (src/b24mw/admin/schemas.py:55)
floor_per_s  # unused variable (src/b24mw/admin/schemas.py:57)
next_slot_in_s  # unused variable (src/b24mw/admin/schemas.py:59)
requests_last_1s  # unused variable (src/b24mw/admin/schemas.py:60)
requests_last_60s  # unused variable (src/b24mw/admin/schemas.py:61)
last_limited_at  # unused variable (src/b24mw/admin/schemas.py:64)
stage_semantic  # unused variable (src/b24mw/crm/schemas.py:24)
contact_id_b24  # unused variable (src/b24mw/crm/schemas.py:27)
company_id_b24  # unused variable (src/b24mw/crm/schemas.py:28)
status_semantic  # unused variable (src/b24mw/crm/schemas.py:51)
contact_id_b24  # unused variable (src/b24mw/crm/schemas.py:54)
company_id_b24  # unused variable (src/b24mw/crm/schemas.py:55)
deal_ids_b24  # unused variable (src/b24mw/crm/schemas.py:64)
total_orders  # unused variable (src/b24mw/reports/schemas.py:81)
total_duration_min  # unused variable (src/b24mw/reports/schemas.py:83)
amounts_by_currency  # unused variable (src/b24mw/reports/schemas.py:84)
manager_id  # unused variable (src/b24mw/returns/schemas.py:102)
manager_id  # unused variable (src/b24mw/returns/schemas.py:138)
text_bbcode  # unused variable (src/b24mw/support/schemas.py:39)

# Columns of the ORM models: the migrations create them and SQLAlchemy reads
# and writes them with every row, whether or not Python code names them.
stage_semantic  # unused variable (src/b24mw/models/crm.py:36)
contact_id_b24  # unused variable (src/b24mw/models/crm.py:39)
company_id_b24  # unused variable (src/b24mw/models/crm.py:40)
status_semantic  # unused variable (src/b24mw/models/crm.py:69)
contact_id_b24  # unused variable (src/b24mw/models/crm.py:72)
company_id_b24  # unused variable (src/b24mw/models/crm.py:73)
locked_at  # unused variable (src/b24mw/models/ops.py:45)
restored_at  # unused variable (src/b24mw/models/ops.py:175)
manager_id  # unused variable (src/b24mw/models/returns.py:32)
crm_activity_id  # unused variable (src/b24mw/models/support.py:44)
text_bbcode  # unused variable (src/b24mw/models/support.py:70)
_.crm_activity_id  # unused attribute (src/b24mw/support/flows.py:75)

# Members of closed sets stored in the database or sent on the wire: a value
# no code names today is still a value a row may hold.
CALL_CENTER  # unused variable (src/b24mw/models/enums.py:36)
WAREHOUSE  # unused variable (src/b24mw/models/enums.py:37)
DEFECT  # unused variable (src/b24mw/models/enums.py:42)
UNKNOWN  # unused variable (src/b24mw/models/enums.py:43)

# Called by a framework, never by our code: pydantic-settings
# (settings_customise_sources and its parameters), SQLAlchemy (TypeDecorator,
# type_annotation_map, compiled-construct cache flags, DBAPI connection
# attributes set on connect).
impl  # unused variable (src/b24mw/models/base.py:36)
cache_ok  # unused variable (src/b24mw/models/base.py:37)
_.process_bind_param  # unused method (src/b24mw/models/base.py:39)
type_annotation_map  # unused variable (src/b24mw/models/base.py:57)
_.settings_customise_sources  # unused method (src/b24mw/demo/stage.py:43)
settings_cls  # unused variable (src/b24mw/demo/stage.py:46)
env_settings  # unused variable (src/b24mw/demo/stage.py:48)
dotenv_settings  # unused variable (src/b24mw/demo/stage.py:49)
file_secret_settings  # unused variable (src/b24mw/demo/stage.py:50)
_.isolation_level  # unused attribute (src/b24mw/kit/db.py:52)
inherit_cache  # unused variable (src/b24mw/kit/listing.py:53)

# Truly unused, in files another part of issue 15 owns (kit/: part A;
# emulator/: part C; support/repository.py: part E).  Left for their owners so the
# merges do not conflict: delete the code and these lines together.
DECLINED  # unused variable (src/b24mw/emulator/access.py:21)
Renderer  # unused variable (src/b24mw/emulator/crm_views.py:148)
SENDERS  # unused variable (src/b24mw/emulator/openlines.py:46)
_._known  # unused attribute (src/b24mw/emulator/views.py:95)
roles_of  # unused function (src/b24mw/kit/auth.py:213)
RateLimited  # unused class (src/b24mw/kit/errors.py:118)
INT64_MAX  # unused variable (src/b24mw/kit/types.py:26)
_.open_count  # unused method (src/b24mw/support/repository.py:116)

# Tests: http.server calls do_POST/log_message; the drill ledger's counters
# are shown in its repr when a drill's assertion fails; tests/webhooks/portal.py
# is moved by part F (tests/support/): order_rows goes with it if still unused.
portal_tasks  # unused variable (tests/drills/ledger.py:58)
portal_effects  # unused variable (tests/drills/ledger.py:59)
_.portal_tasks  # unused attribute (tests/drills/ledger.py:145)
_.portal_effects  # unused attribute (tests/drills/ledger.py:159)
_.do_POST  # unused method (tests/emulator/test_events.py:195)
_.log_message  # unused method (tests/emulator/test_events.py:204)
inherit_cache  # unused variable (tests/reports/test_explain.py:33)
_.order_rows  # unused method (tests/webhooks/portal.py:117)
