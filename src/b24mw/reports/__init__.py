"""Reports and reconciliation (SPEC §4.5): the deliveries report (JSON, CSV,
xlsx) over both kinds of order, and the KMP4 change feed 1C pulls.

- ``repository``: every statement (report rows, the change feed, its horizon);
- ``rows``: a database row as a report row, its duration, the running totals;
- ``csvout``, ``jsonout``, ``xlsx``: the three renderings, each fed row batches
  and bounded in memory;
- ``kmp4``: the status codes, the cursor and the KMP4 item;
- ``service``: who may see what, and which rendering answers;
- ``streaming``: a streamed response that closes its source however it ends.
"""
