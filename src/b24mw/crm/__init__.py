"""CRM: deals and leads mirrored from Bitrix24, orders linked to deals, deals closed
when their delivery ends (docs/crm.md)."""
