"""The `sandbox` and `sandbox_server` fixtures live in tests/support/sandbox.py and are
registered for the whole suite by tests/conftest.py."""
