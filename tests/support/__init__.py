"""Every helper the tests share, so that no test imports a conftest or another test module.

auth (tokens, headers), config (settings, backends), problems (problem+json),
net (ports), timing (requests per window), clock (a clock moved by hand),
postgres / seeded (PostgreSQL servers), processes (``b24mw`` as processes),
outbound (the emulator and sinks for the worker), jobs (outbox rows),
orders (couriers, orders, deliveries), portal (the emulator wired to the API
and a worker), webhooks (signed and token-only events), local_app (OAuth mode),
libreoffice (xlsx checks).
"""
