"""b24mw: Bitrix24 / 1C / Walking Warehouse middleware."""

__version__ = "0.1.0"
