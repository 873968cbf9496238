import pytest

from integrations.services.connections import connection_create
from tests.sandbox.localstripe_support import API_KEY as LOCALSTRIPE_KEY


@pytest.fixture(params=["sandbox", "localstripe"])
def backend(request, db):
    """A Stripe connection pointed at the sandbox, then at localstripe."""
    if request.param == "sandbox":
        sandbox = request.getfixturevalue("sandbox")
        base, key = sandbox.system_url("stripe"), "sk_test_sandbox_gateway_key"
    else:
        server = request.getfixturevalue("localstripe")
        server.reset()
        base, key = server.url, LOCALSTRIPE_KEY
    connection = connection_create(
        name=f"stripe-{request.param}",
        kind="stripe",
        base_url=base,
        credentials={"api_key": key},
        webhook_secrets=["whsec_gateway_tests"],
        rate_limit_per_second=500,
    )
    connection.backend = request.param
    return connection
