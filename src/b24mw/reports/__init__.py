"""Reports and reconciliation (docs/reports.md): the deliveries report (JSON, CSV,
xlsx) over both kinds of order, and the KMP4 change feed 1C pulls.

- ``repository``: the report's statements (rows of both kinds, merged in order);
- ``feed_repository``: the KMP4 change feed's statements and its horizon;
- ``rows``: what a report row holds, and the running totals;
- ``csvout``, ``jsonout``, ``xlsx``: the three renderings, each fed row batches
  and bounded in memory;
- ``kmp4``: the status codes, the cursor and the KMP4 item;
- ``service``: who may see what, and which rendering answers;
- ``streaming``: a streamed response that closes its source however it ends.
"""
