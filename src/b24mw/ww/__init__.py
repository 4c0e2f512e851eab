"""Walking Warehouse orders (SPEC §4.3): ``/api/v1/ww/orders``."""
