"""The status machine and Bitrix24 sync shared by Walking Warehouse orders
(``ww``) and 1C deliveries (``deliveries``), README "Resources"."""
