"""Returns (SPEC §4.1, flow 2): a courier starts a return from Bitrix24, 1C
decides, and Bitrix24, 1C and event consumers hear about every step."""
