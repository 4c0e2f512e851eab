"""Returns (README "Resources"; docs/operations.md "The flows"): a courier
starts a return from Bitrix24, 1C decides, and Bitrix24, 1C and event
consumers hear about every step.

Where the specification is silent, this package decides:

- ``photos`` are Bitrix24 disk file ids: positive integers, or numeric strings
  (Bitrix24 sends ids as strings in form-encoded payloads); answered as
  integers, at most 20 per line.
- ``courier_id`` must name a registered courier (else 422 on ``courier_id``):
  the rejection subtask is assigned through ``couriers.b24_user_id``.
- A courier asking for another courier's return gets 404, not 403, so ids of
  other couriers' returns cannot be probed.
- ``created_from``/``created_to`` are inclusive and need an offset (RFC 3339).
- PUT replaces a ``pending`` return only (else 422 ``conflict.transition``); it
  is logged in ``integration_log`` but not announced: only creation and status
  changes are (README "Decisions where the spec was silent", Returns).  PATCH
  of ``comment``/``manager_id`` alone likewise.
- A PATCH ``comment`` sent with a decision is quoted in the Bitrix24 comment.
- Rejected, courier without a Bitrix24 user: no ``tasks.task.add`` (Bitrix24
  needs a ``RESPONSIBLE_ID`` and guessing one sends the wrong person); the
  linked task gets a comment asking for a manual assignment and
  ``integration_log`` records ``courier_without_b24_user``.
- The subtask ``DEADLINE`` is ISO 8601 in UTC, decided-at +
  ``B24MW_RETURN_SUBTASK_DEADLINE_HOURS``.
- 1C idempotency keys: ``b24mw:returns:<id>:created`` and
  ``b24mw:returns:<id>:status:<status>`` (a status is reached at most once).
- Two decisions read at the same version: the second write loses with 409
  ``conflict.concurrent_update``; a decision on an already decided return is
  422 ``conflict.transition``.
"""
