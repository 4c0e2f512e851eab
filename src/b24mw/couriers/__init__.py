"""The courier directory (SPEC §4.2)."""
