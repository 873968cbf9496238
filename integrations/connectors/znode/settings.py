"""Settings of a Znode connection (``Connection.settings``), read by the client and
the poller."""

from __future__ import annotations

from django.conf import settings as dj_settings

from integrations.kernel.settings import Schema, Setting

# The poller's defaults (sync.py reads them from here).
DEFAULT_POLL_OVERLAP_SECONDS = 600
DEFAULT_FINAL_STATES = ["CANCELED", "CANCELLED", "RETURNED", "EXPIRED", "REJECTED", "FAILED"]
DEFAULT_POLL_RETURN_STATES = ["APPROVED"]


def _platform_time_zone() -> str:
    return dj_settings.TIME_ZONE


SETTINGS = (
    Setting(
        "store_domain",
        "str",
        None,
        "Store domain sent as Znode-DomainName on every call (unset: the API's default store).",
    ),
    Setting(
        "acting_user_id",
        "int",
        None,
        "Znode user id sent as Znode-UserId, for APIs that act on behalf of a user.",
        min=1,
    ),
    Setting(
        "auth",
        "choice",
        "basic",
        "How calls authenticate: Basic domain_name|domain_key, or an OAuth 2.0 "
        "client-credentials token (credentials client_id and client_secret).",
        choices=("basic", "oauth"),
    ),
    Setting(
        "token_auth",
        "bool",
        False,
        "Znode's EnableTokenBasedAuthorization: also send a Token header from "
        "token/generatetoken along with Basic.",
    ),
    Setting(
        "token_url",
        "url",
        None,
        "OAuth token endpoint (unset: the base URL followed by /oauth/token).",
    ),
    Setting("scope", "str", None, "OAuth scope to request (unset: none)."),
    Setting(
        "timezone",
        "timezone",
        _platform_time_zone,
        "Time zone of the store server's clock; Znode dates carry no offset.",
        default_doc="the platform's `TIME_ZONE`",
    ),
    Setting(
        "timeout_seconds",
        "number",
        None,
        "Read timeout of one call in seconds (connect: at most 5; unset: the platform default).",
        min=0,
    ),
    Setting("poll", "bool", True, "Poll the store for new and changed orders (Znode 9.x)."),
    Setting("poll_every_minutes", "int", 1, "Minutes between two polls.", min=1),
    Setting(
        "poll_overlap_seconds",
        "int",
        DEFAULT_POLL_OVERLAP_SECONDS,
        "Each poll re-reads this many seconds before the newest order seen, for late writes.",
        min=0,
    ),
    Setting(
        "final_states",
        "list[str]",
        DEFAULT_FINAL_STATES,
        "Order states after which the poller stops re-reading an order.",
    ),
    Setting(
        "poll_returns",
        "bool",
        True,
        "Poll the store's returns (rmareturn/list) too, when polling is on (Znode 9.x).",
    ),
    Setting(
        "poll_return_states",
        "list[str]",
        DEFAULT_POLL_RETURN_STATES,
        "Return states (names, as in rmareturn/getreturnstatuslist) whose returns the "
        "poller reports; an empty list reports returns in every state.",
    ),
    Setting(
        "poll_customers",
        "bool",
        True,
        "Poll the store's customers (customeraccount/list) and their address books "
        "(customer/addresslist) too, when polling is on (Znode 9.x): user and address "
        "events for the customer sync. On 9.x the address poll sees addresses added, "
        "not edits of an existing address.",
    ),
)

SCHEMA = Schema(SETTINGS)
