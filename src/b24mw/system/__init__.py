"""Liveness, database ping and Prometheus metrics."""
