"""The transactional outbox: the one path for everything that leaves the service.

Services add jobs through ``Outbox`` inside their unit of work; the commit that
makes the change real makes the jobs real, a rollback leaves nothing.  The
worker (``b24mw worker``) delivers them.
"""

from b24mw.outbox.enqueue import Outbox

__all__ = ["Outbox"]
