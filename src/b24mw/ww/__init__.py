"""Walking Warehouse orders (README "Resources"): ``/api/v1/ww/orders``."""
