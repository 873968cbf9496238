"""Benchmark settings: the product's settings, with ``/bare/`` added to the URLconf.

Everything else (middleware, database, logging, INTEGRATIONS, Q_CLUSTER) is exactly
what ``config.settings`` builds from the environment, so the bare view and the real
webhook endpoint run through the same stack in the same server.
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.bare_urls"
