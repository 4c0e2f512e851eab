"""Deliveries from 1C (README "Resources"): ``/api/v1/deliveries`` on the ``orders`` table.

Importing the package registers the ``tasks.task.add`` result hook, so any
process that imports the API (or this package) can complete delivery jobs.
"""

from b24mw.deliveries import hooks as _hooks  # noqa: F401
