"""Znode customers (UserModel and its address book, reference znode-api.md §6, §3.3) as
facts, as writes and as events, read from the sandbox store over real HTTP."""

import json
import time
from urllib.parse import unquote_plus

import pytest
import requests

from integrations.connectors import registry as connectors
from integrations.connectors.znode.mapping import (
    ZnodeAddress,
    ZnodeCustomer,
    address_change_key,
    address_changes,
    address_fingerprint,
    address_row_from_wire,
    change_fingerprint,
    customer_from_wire,
    user_change_key,
    user_changes,
    user_fingerprint,
)
from integrations.connectors.znode.sync import address_event_body, user_event_body
from integrations.connectors.znode.webhooks import parse
from integrations.kernel.facts import CustomerProfile, PostalAddress
from integrations.models import ApiCall
from tests.sandbox.test_znode_helpers import Receiver
from tests.support.shop import store_connection

pytestmark = pytest.mark.django_db

WEBHOOK_SECRET = "Bearer customers-webhook-token"


@pytest.fixture
def receiver(sandbox):
    """The sandbox store's Znode 10 webhooks (User, Address...), as it sends them."""
    hook = Receiver()
    sandbox.control("POST", "webhooks/znode", {"url": hook.url, "secret": WEBHOOK_SECRET})
    yield hook
    hook.close()


def webhooks_of(receiver: Receiver, module: str, count: int, timeout: float = 5.0) -> list:
    """The store's events of ``module`` (parsed as the endpoint parses them), once
    ``count`` of them have arrived."""
    deadline = time.monotonic() + timeout
    while True:
        found = [parse(raw) for _, raw in list(receiver.received)]
        found = [e for e in found if e.payload["envelope"]["EventModule"] == module]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def new_customer(sandbox, **fields) -> dict:
    """A shopper signs up in the sandbox store (``/_test/customers``)."""
    response = requests.post(
        f"{sandbox.system_url('znode')}/_test/customers",
        json={"first_name": "Gus", "last_name": "Green", "email": "gus@example.com", **fields},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["User"]


def calls(operation: str) -> list[str]:
    return [
        unquote_plus(url)
        for url in ApiCall.objects.filter(operation=operation)
        .order_by("id")
        .values_list("url", flat=True)
    ]


# --- facts -------------------------------------------------------------------------------
def test_a_seeded_customer_read_from_the_store_as_facts(znode):
    raw = znode.get_customer(user_id=11, portal_id=1)
    found = customer_from_wire(raw)
    billing, shipping = (a for a in raw["Addresses"])
    assert found == ZnodeCustomer(
        user_id=11,
        portal_id=1,
        email="alice@example.com",
        first_name="Alice",
        last_name="Anderson",
        phone="555-0101",
        modified=raw["ModifiedDate"],
        addresses=(
            ZnodeAddress(
                address_id=201,
                user_id=11,
                default_billing=True,
                default_shipping=False,
                address=PostalAddress(
                    name="Alice Anderson",
                    line1="12 Market St",
                    city="San Francisco",
                    state="CA",
                    postal_code="94103",
                    country="US",
                    phone="555-0101",
                ),
                modified=billing["ModifiedDate"],
            ),
            ZnodeAddress(
                address_id=202,
                user_id=11,
                default_billing=False,
                default_shipping=True,
                address=PostalAddress(
                    name="Alice Anderson",
                    line1="400 Mission Blvd",
                    city="Oakland",
                    state="CA",
                    postal_code="94607",
                    country="US",
                    phone="555-0101",
                ),
                modified=shipping["ModifiedDate"],
            ),
        ),
    )
    assert found.raw is raw and found.addresses[0].raw is billing
    assert found.name == "Alice Anderson"
    assert (found.billing_address.address_id, found.shipping_address.address_id) == (201, 202)
    assert found.profile == CustomerProfile(
        email="alice@example.com",
        name="Alice Anderson",
        phone="555-0101",
        billing=found.addresses[0].address,
        shipping=found.addresses[1].address,
    )
    assert found.modified.startswith("20")


def test_any_store_reads_the_customer_account_details(znode):
    """§6: ``users/getcustomeraccountdetails/{userId}`` needs no portal; both routes
    read fresh (``cache=refresh`` after another parameter, §12)."""
    by_portal = znode.get_customer(user_id=14, portal_id=2)
    anywhere = znode.get_customer(user_id=14, portal_id=None)
    assert customer_from_wire(anywhere) == customer_from_wire(by_portal)
    assert customer_from_wire(anywhere).portal_id == 2
    assert [url.split("/znode/", 1)[1] for url in calls("znode.customer.get")] == [
        "useraccounts/14/2?expand=&cache=refresh",
        "users/getcustomeraccountdetails/14?expand=&cache=refresh",
    ]


@pytest.mark.parametrize(
    ("sent", "country"),
    [
        ({"CountryCode": "DE", "CountryName": "Germany"}, "DE"),
        ({"CountryCode": None, "CountryName": "deu"}, "DE"),  # alpha-3
        ({"CountryCode": "", "CountryName": "United  States of America"}, "US"),
        ({"CountryName": "Germany"}, "DE"),  # an English name
        ({"CountryCode": None, "CountryName": "  Atlantis  Isle "}, "ATLANTIS ISLE"),
        ({"CountryCode": "XK", "CountryName": "Kosovo"}, "XK"),  # no ISO alpha-2 either
        ({"CountryCode": None, "CountryName": None}, ""),
    ],
)
def test_an_address_country_is_its_code_or_the_text_sent(sent, country):
    found = address_row_from_wire({"AddressId": 1, **sent})
    assert found.address.country == country


def test_address_lines_state_and_odd_values():
    found = address_row_from_wire(
        {
            "AddressId": "7",
            "UserId": None,
            "FirstName": " Ann ",
            "LastName": None,
            "Address1": "1 Main St",
            "Address2": "Suite 5",
            "Address3": " Building B ",
            "CityName": "Reno",
            "StateName": "Nevada",
            "StateCode": "NV",
            "PostalCode": 89501,
            "CountryName": "US",
            "PhoneNumber": None,
            "IsDefaultBilling": "true",
            "IsDefaultShipping": 0,
            "ModifiedDate": "2026-11-30T10:00:00.5",
        }
    )
    assert found == ZnodeAddress(
        address_id=7,
        user_id=None,
        default_billing=True,
        default_shipping=False,
        address=PostalAddress(
            name="Ann",
            line1="1 Main St",
            line2="Suite 5 Building B",
            city="Reno",
            state="NV",
            postal_code="89501",
            country="US",
        ),
        modified="2026-11-30T10:00:00.5",
    )
    by_name = address_row_from_wire({"StateName": "Nevada", "Address3": "Rear"})
    assert (by_name.address.state, by_name.address.line2, by_name.address_id) == (
        "Nevada",
        "Rear",
        0,
    )


def test_the_default_addresses_are_the_oldest_flagged_rows_or_none():
    def row(address_id, billing, shipping, user_id=5):
        return {
            "AddressId": address_id,
            "UserId": user_id,
            "IsDefaultBilling": billing,
            "IsDefaultShipping": shipping,
            "Address1": f"{address_id} Main St",
        }

    user = {"UserId": 5, "Email": "x@example.com", "FirstName": "", "LastName": "Lee"}
    rows = [row(9, True, False), row(4, True, True), row(6, False, True), row(3, True, True, 6)]
    found = customer_from_wire(user, rows)
    assert [a.address_id for a in found.addresses] == [4, 6, 9]  # user 6's row left out
    assert (found.billing_address.address_id, found.shipping_address.address_id) == (4, 4)
    assert found.name == "Lee"
    bare = customer_from_wire({**user, "Addresses": None}, [row(9, False, False)])
    assert (bare.billing_address, bare.shipping_address) == (None, None)
    assert bare.profile == CustomerProfile(email="x@example.com", name="Lee")
    # Without rows given, the user's own Addresses list (get_customer fills it in).
    own = customer_from_wire({**user, "Addresses": rows})
    assert [a.address_id for a in own.addresses] == [4, 6, 9]
    assert customer_from_wire({}).user_id == 0 and customer_from_wire({}).addresses == ()


# --- what a profile writes ---------------------------------------------------------------
def test_a_profile_as_user_fields():
    profile = CustomerProfile(email=" Mary@Example.com ", name="Mary  Ann Smith", phone="")
    assert user_changes(profile) == {
        "Email": "Mary@Example.com",
        "FirstName": "Mary",
        "LastName": "Ann Smith",
        "PhoneNumber": None,  # blank: null, Znode's "not set"
    }
    # A blank email is never written: it is the account's login, kept as stored.
    assert user_changes(CustomerProfile(name="Cher", phone="555-1")) == {
        "FirstName": "Cher",
        "LastName": None,
        "PhoneNumber": "555-1",
    }
    assert user_changes(CustomerProfile()) == {
        "FirstName": None,
        "LastName": None,
        "PhoneNumber": None,
    }


def test_an_address_as_address_fields():
    address = PostalAddress(
        name="Mary Ann Smith",
        line1="1 Pier",
        line2="Suite 5",
        city="Boston",
        state="MA",
        postal_code="02110",
        country="usa",
        phone="",
    )
    assert address_changes(address) == {
        "FirstName": "Mary",
        "LastName": "Ann Smith",
        "Address1": "1 Pier",
        "Address2": "Suite 5",
        "Address3": None,
        "CityName": "Boston",
        "StateName": "MA",
        "StateCode": "MA",
        "PostalCode": "02110",
        "CountryName": "US",
        "CountryCode": "US",
        "PhoneNumber": None,
    }
    unknown = address_changes(PostalAddress(country=" atlantis "))
    assert (unknown["CountryName"], unknown["CountryCode"]) == ("ATLANTIS", "ATLANTIS")
    assert address_changes(PostalAddress())["CountryName"] is None


def test_a_profile_written_to_the_store_reads_back_the_same(znode):
    """user_changes / address_changes round trip: what the domain writes is what it
    reads back (the name split at its first space joins back to the same name)."""
    wanted = CustomerProfile(
        email="mary.smith@example.com",
        name="Mary Ann Smith",
        phone="555-0199",
        billing=PostalAddress(
            name="Mary Ann Smith",
            line1="1 Pier",
            line2="Suite 5",
            city="Boston",
            state="MA",
            postal_code="02110",
            country="US",
            phone="555-0199",
        ),
        shipping=PostalAddress(
            name="M Smith",
            line1="9 Dock Rd",
            city="Portland",
            state="ME",
            postal_code="04101",
            country="US",
        ),
    )
    # Bob (user 12) has one address (203), default for both.
    znode.update_customer(user_id=12, portal_id=1, changes=user_changes(wanted))
    znode.update_address(
        user_id=12,
        address_id=203,
        changes={**address_changes(wanted.billing), "IsDefaultShipping": False},
    )
    created = znode.create_address(
        user_id=12,
        values={
            **address_changes(wanted.shipping),
            "IsDefaultShipping": True,
            "IsDefaultBilling": False,
            "IsActive": True,
        },
    )
    found = customer_from_wire(znode.get_customer(user_id=12, portal_id=None))
    assert found.profile == wanted
    assert [a.address_id for a in found.addresses] == [203, created["AddressId"]]
    assert (found.first_name, found.last_name) == ("Mary", "Ann Smith")
    # The address row kept what the write did not touch (read-modify-write, §12).
    assert found.addresses[0].raw["UserAddressId"] == 1203
    assert found.addresses[0].raw["DisplayName"] == "Bob Austin"


def test_an_address_created_from_a_listed_row_is_a_new_row_of_the_user(znode):
    listed = znode.list_addresses(user_id=11)[0]
    assert listed["DontAddUpdateAddress"] is True  # a list row says so (§6)
    created = znode.create_address(user_id=11, values={**listed, "IsDefaultBilling": False})
    assert created["AddressId"] not in (0, 201, 202)
    assert created["UserId"] == 11 and created["Address1"] == "12 Market St"
    rows = {a["AddressId"]: a for a in znode.list_addresses(user_id=11)}
    assert sorted(rows) == [201, 202, created["AddressId"]]
    assert rows[201]["IsDefaultBilling"] is True  # the copy claimed no default
    (sent,) = [
        json.loads(c.request_body)
        for c in ApiCall.objects.filter(operation="znode.customer.create_address")
    ]
    assert "AddressId" not in sent and "UserAddressId" not in sent
    assert (sent["UserId"], sent["DontAddUpdateAddress"]) == (11, False)


# --- reading lists -------------------------------------------------------------------------
def test_customers_come_in_user_id_order_after_a_cursor(sandbox, znode):
    added = [new_customer(sandbox, email=f"c{i}@example.com")["UserId"] for i in range(3)]
    assert added == [16, 17, 18]
    rows = list(znode.list_customers(after_user_id=12, page_size=2))
    assert [r["UserId"] for r in rows] == [13, 14, 15, 16, 17, 18]
    # Each page asks for the users after the last one read (page 1 every time).
    assert [url.split("?", 1)[1] for url in calls("znode.customer.list")] == [
        f"filter=userid~gt~{last}&sort=userid~asc&page=index~1,size~2&cache=refresh"
        for last in (12, 14, 16, 18)
    ]
    assert all("/customeraccount/list/0?" in url for url in calls("znode.customer.list"))
    # Lazily: the first page alone when only the first row is wanted.
    ApiCall.objects.all().delete()
    first = next(znode.list_customers(after_user_id=15, page_size=2))
    assert first["UserId"] == 16 and len(calls("znode.customer.list")) == 1
    assert list(znode.list_customers(after_user_id=18)) == []


def test_customers_modified_since_a_moment(sandbox, znode):
    from django.utils import timezone

    before = timezone.now()
    gus = new_customer(sandbox)
    rows = list(znode.list_customers(since=before))
    assert [r["UserId"] for r in rows] == [gus["UserId"]]  # the seeded users are older
    (url,) = calls("znode.customer.list")
    assert "filter=modifieddate~ge~" in url and ",userid~gt~0&" in url
    acting = store_connection(sandbox, name="acting", acting_user_id=2)
    list(acting.client().list_customers(since=before))
    assert "/customeraccount/list/2?" in calls("znode.customer.list")[-1]


def test_a_store_ignoring_the_cursor_is_an_error_not_a_loop(znode, monkeypatch):
    from integrations.kernel import exceptions as exc

    page = {"Users": [{"UserId": 11}, {"UserId": 12}]}
    monkeypatch.setattr(type(znode), "request", lambda self, *a, **k: page)
    with pytest.raises(exc.DataError, match="user 11 came after user 12"):
        list(znode.list_customers(page_size=2))


def test_addresses_of_several_users_and_added_since(sandbox, znode):
    from django.utils import timezone

    rows = znode.list_addresses(user_ids=[14, 11, 14])
    assert [r["AddressId"] for r in rows] == [201, 202, 205]
    assert "filter=userid~in~11^14&sort=addressid~asc" in calls("znode.customer.addresses")[0]
    before = timezone.now()
    created = znode.create_address(
        user_id=13, values={"Address1": "2 Bay St", "CityName": "Tacoma", "IsActive": True}
    )
    since = znode.list_addresses(since=before)
    assert [r["AddressId"] for r in since] == [created["AddressId"]]
    assert "sort=modifieddate~asc,addressid~asc" in calls("znode.customer.addresses")[-1]
    assert znode.list_addresses(user_id=13, since=before)[0]["CityName"] == "Tacoma"
    assert znode.list_addresses(user_id=999) == []
    with pytest.raises(ValueError, match="needs user_id, user_ids or since"):
        znode.list_addresses()


# --- the echo of our own writes ------------------------------------------------------------
def test_our_user_write_comes_back_with_the_fingerprint_we_predict(znode, receiver):
    """The domain fingerprints the model it PUT; the User webhook the store then sends
    (sandbox ``emit_user``: the stored row) and the poller's event of that state
    carry the same fingerprint."""
    written = znode.update_customer(
        user_id=13,
        portal_id=1,
        changes=user_changes(CustomerProfile(email="Carla@Example.com", name="Carla  Chen-Li")),
    )
    (hook,) = webhooks_of(receiver, "User", 1)
    assert hook.event_type == "user.updated"
    change = change_fingerprint(hook.event_type, hook.payload)
    assert change.object_key == user_change_key(13) == "user:13"
    assert change.fingerprint == user_fingerprint(written)
    assert hook.payload["object"]["LastName"] == "Chen-Li"
    (row,) = [r for r in znode.list_customers(after_user_id=12) if r["UserId"] == 13]
    polled = parse(user_event_body(row))
    assert polled.event_type == "user.updated"
    assert change_fingerprint(polled.event_type, polled.payload) == change
    # A save of a field the sync never writes (EmailOptIn) is no change that matters.
    opted = znode.update_customer(user_id=13, portal_id=1, changes={"EmailOptIn": True})
    assert opted["EmailOptIn"] is True
    second = webhooks_of(receiver, "User", 2)[-1]
    assert second.payload["object"]["EmailOptIn"] is True
    assert change_fingerprint(second.event_type, second.payload) == change
    assert user_fingerprint(opted) == user_fingerprint(written)
    # What the sync acts on does change it.
    for field, value in (("Email", "carla@other.example"), ("PhoneNumber", "555-7")):
        assert user_fingerprint({**written, field: value}) != user_fingerprint(written)
    assert user_fingerprint({**written, "Email": " CARLA@example.COM "}) == user_fingerprint(
        written
    )


def test_our_address_writes_come_back_with_the_fingerprint_we_predict(znode, receiver):
    written = znode.update_address(
        user_id=14,
        address_id=205,
        changes=address_changes(
            PostalAddress(
                name="Dieter Drechsler",
                line1="Torstrasse 12",
                line2="Hinterhaus",
                city="Berlin",
                state="BE",
                postal_code="10119",
                country="DEU",
            )
        ),
    )
    assert (written["AddressId"], written["UserId"], written["CountryCode"]) == (205, 14, "DE")
    assert written["UserAddressId"] == 1205  # the full row, as written
    (hook,) = webhooks_of(receiver, "Address", 1)
    change = change_fingerprint(hook.event_type, hook.payload)
    assert (hook.event_type, change.object_key) == ("address.updated", address_change_key(205))
    assert change.fingerprint == address_fingerprint(written)
    (row,) = [r for r in znode.list_addresses(user_id=14) if r["AddressId"] == 205]
    polled = parse(address_event_body(row))
    assert change_fingerprint(polled.event_type, polled.payload) == change
    # An address we add: the store's Address Created event and the poller's agree too.
    created = znode.create_address(
        user_id=14,
        values={**address_changes(PostalAddress(line1="Ufer 1", country="DE")), "IsActive": True},
    )
    hook = webhooks_of(receiver, "Address", 2)[-1]
    made = change_fingerprint(hook.event_type, hook.payload)
    assert (hook.event_type, made.creates, made.update_event_type) == (
        "address.created",
        True,
        "address.updated",
    )
    assert made.object_key == f"address:{created['AddressId']}"
    assert made.fingerprint == address_fingerprint(created)
    (row,) = [r for r in znode.list_addresses(user_id=14) if r["AddressId"] == created["AddressId"]]
    polled = parse(address_event_body(row))
    assert polled.event_type == "address.created"
    assert change_fingerprint(polled.event_type, polled.payload) == made


def test_what_an_address_fingerprint_acts_on():
    row = {
        "AddressId": 5,
        "UserId": 9,
        "FirstName": "Ann",
        "LastName": "Lee",
        "Address1": "1 Main St",
        "Address2": "Suite 5",
        "Address3": None,
        "CountryName": "US",
        "CountryCode": None,
        "IsDefaultBilling": True,
        "IsDefaultShipping": False,
        "ModifiedDate": "2026-11-30T10:00:00",
        "DisplayName": "Ann home",
        "IsActive": True,
    }
    same = {
        **row,
        "Address2": "Suite",
        "Address3": "5",  # the same line2
        "CountryName": "USA",
        "ModifiedDate": "2026-12-01T09:00:00",
        "DisplayName": "Ann's",
        "IsActive": False,
    }
    assert address_fingerprint(same) == address_fingerprint(row)
    for change in (
        {"UserId": 10},
        {"IsDefaultShipping": True},
        {"IsDefaultBilling": False},
        {"PostalCode": "1"},
        {"LastName": "Li"},
        {"CountryName": "CA"},
    ):
        assert address_fingerprint({**row, **change}) != address_fingerprint(row)


# --- events --------------------------------------------------------------------------------
def test_user_and_address_events_name_the_customer():
    connector = connectors.get("znode")
    for event_type in ("user.created", "user.updated", "address.created", "address.updated"):
        assert connector.is_known_event(event_type)
    user = {"object": {"UserId": 14, "PortalId": 2, "Email": "d@example.de"}}
    assert connector.event_facts("user.updated", user) == {
        "customer": {"user_id": 14, "portal_id": 2}
    }
    thin = {"envelope": {"EventDataId": 15}, "object": {"PortalId": 0}}
    assert connector.event_facts("user.created", thin) == {
        "customer": {"user_id": 15, "portal_id": None}
    }
    address = {"envelope": {"EventDataId": 205}, "object": {"AddressId": 205, "UserId": 14}}
    assert connector.event_facts("address.updated", address) == {
        "customer": {"user_id": 14, "portal_id": None}
    }
    assert connector.event_facts("address.created", {"object": {"AddressId": 1}}) == {
        "customer": {"user_id": None, "portal_id": None}
    }
    created = connector.change_fingerprint("user.created", user)
    assert (created.object_key, created.creates, created.update_event_type) == (
        "user:14",
        True,
        "user.updated",
    )
    assert created.fingerprint == user_fingerprint(user["object"])
    by_envelope = connector.change_fingerprint("address.updated", address)
    assert by_envelope.object_key == "address:205"
    assert connector.change_fingerprint("user.deleted", user) is None
    assert connector.change_fingerprint("address.updated", {"object": {"UserId": 3}}) is None
