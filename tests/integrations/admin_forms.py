"""Form data the admin's connection page posts, for tests that submit it."""


def connection_form_data(connection, **changes) -> dict:
    """What the change form of ``connection`` posts when nothing is edited (secrets
    are write-only, so their fields post empty), with ``changes`` applied."""
    data = {
        "name": connection.name,
        "kind": connection.kind,
        "environment": connection.environment,
        "base_url": connection.base_url,
        "rate_limit_per_second": "5",
        "enabled": "on",
        "settings": "{}",
        "new_credentials": "",
        "add_webhook_secret": "",
        "change_reason": "",
    }
    return {**data, **changes}
