from tests.support.outbound import *  # noqa: F403  (shared outbound fixtures)
