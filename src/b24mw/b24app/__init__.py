"""b24mw as a Bitrix24 local application: installation, OAuth tokens, event handlers.

The incoming-webhook mode (``B24MW_B24_AUTH=webhook``) stays the default;
``oauth`` makes every Bitrix24 call carry the installed application's access
token (``session.AppSession``), kept fresh one process at a time.
"""

from b24mw.b24app import binding

__all__ = ["binding"]
