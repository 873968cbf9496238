"""Fake Znode 9.x API (and Znode 10-style webhooks); see ``sandbox.znode.app``."""
