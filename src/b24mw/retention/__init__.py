"""Retention (docs/retention.md, issue 14): task history older than the retention window
goes to verified archive parts in object storage, then leaves the database;
expired operational rows are purged.  ``flows`` runs it, ``commands`` is
``b24mw archive``, ``scheduler`` the daily run in the worker."""
