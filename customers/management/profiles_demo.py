"""The demo's returning customers (``manage.py demo``): the store's existing users are
linked by the backfill, then three of them change their profile, on either side, and
the demo watches each change reach the other system and stay put.

It plays the people who make the changes, from outside, through each system's own
API: a shopper who moves (Znode's address book, 9.x ``customer/updatecustomeraddress``
after a read, as Znode's admin saves a whole row), a shopper who changes their name
(the storefront), and support who corrects a phone number in the Stripe Dashboard.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from django.core.management import call_command

from integrations.logging import calls_quieted


@dataclass
class ProfileChange:
    who: str
    user_id: int
    what: str
    where: str
    """The system the change was made in; the other one must show it."""
    shown: Callable[[], bool]
    arrived_after: float | None = None
    stayed: bool = False


class ProfilesDemo:
    def __init__(
        self, *, sandbox: str, stripe_key: str, store_domain: str, store_key: str, out
    ) -> None:
        self.sandbox = sandbox
        self.stripe_auth = {"Authorization": f"Bearer {stripe_key}"}
        basic = base64.b64encode(f"{store_domain}|{store_key}".encode()).decode()
        self.znode_auth = {"Authorization": f"Basic {basic}"}
        self.out = out
        self.changes: list[ProfileChange] = []

    # --- the systems, from outside ------------------------------------------------------------
    def _znode(self, method: str, path: str, **kwargs) -> dict:
        response = requests.request(
            method, f"{self.sandbox}/znode/{path}", headers=self.znode_auth, timeout=10, **kwargs
        )
        response.raise_for_status()
        return response.json() if response.content else {}

    def _stripe(self, method: str, path: str, **params) -> dict:
        response = requests.request(
            method,
            f"{self.sandbox}/stripe{path}",
            headers=self.stripe_auth,
            params=params if method == "GET" else None,
            data=None if method == "GET" else params,
            timeout=10,
        )
        response.raise_for_status()
        return response.json()

    def znode_user(self, user_id: int) -> dict:
        return self._znode("GET", f"users/getcustomeraccountdetails/{user_id}?cache=refresh")[
            "User"
        ]

    def znode_addresses(self, user_id: int) -> list[dict]:
        found = self._znode("GET", f"customer/addresslist?filter=userid~eq~{user_id}&cache=refresh")
        return found.get("AddressList") or []

    def stripe_customer(self, user_id: int) -> dict:
        query = f"metadata['znode_user_id']:'{user_id}'"
        found = self._stripe("GET", "/v1/customers/search", query=query)["data"]
        return found[0] if found else {}

    # --- the demo -----------------------------------------------------------------------------
    def backfill(self, integration: str) -> str:
        """Link the store's existing users (``manage.py sync_customers``)."""
        out = io.StringIO()
        with calls_quieted():  # the demo's own output is the summary, not each call
            call_command(
                "sync_customers", "--integration", integration, "--no-progress", stdout=out
            )
        return out.getvalue().strip().splitlines()[-1]

    def change(self) -> None:
        """A shopper moves, another changes her name, support fixes a phone."""
        moved = next(
            a for a in self.znode_addresses(11) if a.get("IsDefaultBilling")
        )  # Alice's billing address
        self._znode(
            "PUT", "customer/updatecustomeraddress", json={**moved, "Address1": "88 Valencia St"}
        )
        self.changes.append(
            ProfileChange(
                "Alice",
                11,
                "billing address → 88 Valencia St",
                "znode",
                lambda: (
                    (self.stripe_customer(11).get("address") or {}).get("line1") == "88 Valencia St"
                ),
            )
        )
        requests.post(
            f"{self.sandbox}/znode/_test/customers/13/update",
            json={"LastName": "Chen-Park"},
            timeout=10,
        ).raise_for_status()
        self.changes.append(
            ProfileChange(
                "Carla",
                13,
                "name → Carla Chen-Park",
                "znode",
                lambda: self.stripe_customer(13).get("name") == "Carla Chen-Park",
            )
        )
        bob = self.stripe_customer(12)
        self._stripe("POST", f"/v1/customers/{bob['id']}", phone="555-0199")
        self.changes.append(
            ProfileChange(
                "Bob",
                12,
                "phone → 555-0199 (support, Stripe Dashboard)",
                "stripe",
                lambda: self.znode_user(12).get("PhoneNumber") == "555-0199",
            )
        )
        self.started = time.monotonic()
        self.watcher = threading.Thread(target=self._watch, daemon=True, name="profiles-demo")
        self.watcher.start()

    def _watch(self, timeout: float = 120) -> None:
        """How long each change takes to show on the other side (read every 0.2 s while
        the orders flow)."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            for change in self.changes:
                if change.arrived_after is None and change.shown():
                    change.arrived_after = time.monotonic() - self.started
            if all(c.arrived_after is not None for c in self.changes):
                return
            time.sleep(0.2)

    def settle(self) -> bool:
        """Once every change showed on the other side (or the watch gave up), a few
        seconds more: each must still show then (no echo wrote the old value back)."""
        self.watcher.join()
        time.sleep(3)
        for change in self.changes:
            change.stayed = change.arrived_after is not None and change.shown()
        return all(c.stayed for c in self.changes)

    def cards_shown(self, integration, user_ids) -> bool:
        """The cards these users saved in Stripe before they were linked show on their
        links (the admin's customer page), read by the backfill's sync."""
        from customers.models import SavedCard

        shown = True
        for user_id in user_ids:
            cards = list(
                SavedCard.objects.filter(link__integration=integration, link__znode_user_id=user_id)
            )
            listed = ", ".join(str(card) for card in cards) or "NONE"
            self.out.write(f"saved cards of Znode user {user_id} on its customer page: {listed}")
            shown = shown and bool(cards)
        return shown

    def report(self, backfill: str) -> None:
        from integrations.models import InboundEvent

        self.out.write("\nreturning customers (linked by the backfill: " + backfill + "):")
        for c in self.changes:
            other = "Stripe" if c.where == "znode" else "Znode"
            arrived = f"in {c.arrived_after:.1f} s" if c.arrived_after is not None else "NEVER"
            self.out.write(
                f"{c.who:<6} {c.what:<46} made in {c.where:<6} → shown in {other} {arrived}, "
                f"{'stayed' if c.stayed else 'DID NOT STAY'}"
            )
        echoes = InboundEvent.objects.filter(status_reason__contains="echo of our own write")
        self.out.write(f"echoes of our own customer writes dropped at the inbox: {echoes.count()}")
