"""Cross-cutting pieces every domain package uses: database, errors, request
context, idempotency, auth, pagination, logging and metrics."""
