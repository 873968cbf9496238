"""Runnable fakes of Znode (9.x API + 10.x webhooks), Stripe (a subset) and an ERP.

Served as its own process (``python -m sandbox --port 8100``) with its own storage,
for the demo and the tests, which reach it over real HTTP. Nothing outside this
package imports it, and it imports nothing from the platform.
"""
