"""The one-command demo: platform + sandbox, wired, with shoppers placing orders.

    python manage.py demo                          # runs until Ctrl-C (make demo)
    python manage.py demo --orders 50 --exit-when-settled

It starts the sandbox (Znode, Stripe, ERP) and the platform (web + worker) as child
processes, wires the connections and the integration through the same CLI an
operator uses (``manage.py connection`` / ``manage.py integration``), registers the
sandbox's webhooks, then places orders at a steady pace, as a stock Znode 9.x store
takes them (reference znode-api.md §9.1): most are card orders that Znode's payment
app authorizes at checkout, which the platform adopts and captures when the store
ships them; some are charged off-session to a card the customer saved in Stripe, and
one customer's saved card is declined; some customers pay on the Stripe-hosted page
whose link the platform emails them (the demo plays the customer and pays it).

Then the money goes back, as shoppers, the store and the merchant do it: shoppers
return paid orders in full or in part (one unit of two, one line of two, two equal
returns of one order) and the store's admin approves them; the merchant refunds part
of an order in the Stripe Dashboard; a card whose refunds fail at the bank
(``pm_card_refundFail``) is returned and refunded, then Stripe's scheduled work fails
the refund; two cards are disputed once captured (``pm_card_createDispute``), one
dispute won, one lost.

The shoppers are returning customers: before the first order the backfill
(``manage.py sync_customers``) links the store's users to Stripe customers (matching
those who saved a card), and while orders flow one shopper moves house and another
changes her name in Znode, and support corrects a third one's phone in the Stripe
Dashboard; each change must reach the other system and stay there.

With ``--exit-when-settled`` it waits until every order and every refund and dispute
has settled, prints whether the platform, Znode, Stripe and the ERP agree about each
one (each read from its own state), and exits 0 only if they all do and every
profile change arrived.
"""

from __future__ import annotations

import io
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from customers.management.profiles_demo import ProfilesDemo
from integrations import processes
from integrations.connectors.stripe.constants import METADATA_RETURN_NUMBER
from integrations.connectors.znode.mapping import history_rows
from integrations.kernel.metrics import multiprocess_dir_clear
from integrations.models import Connection, Integration
from payments import money
from reconciliation.management.payouts_demo import PayoutsDemo

STORE_DOMAIN = "sandbox-store.local"
STORE_KEY = "8f3b2c1e-5d4a-4b6e-9c7f-0a1b2c3d4e5f"
STRIPE_KEY = "sk_test_demo_platform_key"
ERP_TOKEN = "sandbox-erp-token"
STORE_TIMEZONE = "America/Chicago"  # the sandbox store's clock (reference §2.2)
GATEWAY_SETTING, GATEWAY_AUTHORIZE_SETTING, LINK_SETTING, SAVED_SETTING = 7, 8, 10, 11
ADOPTED_SETTINGS = (GATEWAY_SETTING, GATEWAY_AUTHORIZE_SETTING)
COLLECTION_MODES = '{"7": "adopt", "8": "adopt", "10": "customer", "11": "saved_method"}'
PAID_BY = {
    GATEWAY_SETTING: "adopted",
    GATEWAY_AUTHORIZE_SETTING: "adopted",
    LINK_SETTING: "link",
    SAVED_SETTING: "saved",
}
CHECKOUT_SUCCESS_URL = f"https://{STORE_DOMAIN}/checkout/thanks"
# Znode users with a card saved in Stripe, and that card.
SAVED_CARDS = {
    12: ("bob@example.com", "pm_card_visa"),
    13: ("carla@example.com", "pm_card_chargeCustomerFail"),
}

# (card typed at checkout or saved, user, payment setting, expected outcome, share)
SCENARIOS = [
    ("pm_card_visa", 11, GATEWAY_SETTING, "paid", 0.40),
    ("pm_card_mastercard", 11, GATEWAY_AUTHORIZE_SETTING, "paid", 0.20),
    ("saved", 12, SAVED_SETTING, "paid", 0.20),
    ("saved", 13, SAVED_SETTING, "failed", 0.10),
    ("link", 11, LINK_SETTING, "paid", 0.10),
]


CENT = Decimal("0.01")
MUG, CAP = "SBX-MUG-11OZ", "SBX-CAP-NVY"

# After-sales, dealt in turn to paid orders (each placed with the basket it needs)...
FULL_RETURN = "full return"
UNIT_RETURN = "return 1 of 2"
LINE_RETURN = "return 1 line of 2"
TWO_RETURNS = "2 equal returns"
DASHBOARD = "Dashboard refund"
ON_PAID_ORDERS = (FULL_RETURN, UNIT_RETURN, LINE_RETURN, TWO_RETURNS, DASHBOARD)
# ... and to orders placed for them, paid at checkout (setting 7) with a test card.
REFUND_FAILS = "refund fails"
DISPUTE_WON = "dispute won"
DISPUTE_LOST = "dispute lost"
TEST_CARDS = {
    REFUND_FAILS: "pm_card_refundFail",  # its refunds succeed, then fail at the bank
    DISPUTE_WON: "pm_card_createDispute",  # disputed once captured
    DISPUTE_LOST: "pm_card_createDispute",
}
AFTER_SALES_PER = 25  # orders per round of after-sales (one round at least)
# What each return sends back: lines [{sku, quantity}] per return (none: all of it).
RETURNS = {
    FULL_RETURN: [[]],
    UNIT_RETURN: [[{"sku": MUG, "quantity": 1}]],
    LINE_RETURN: [[{"sku": CAP, "quantity": 1}]],
    TWO_RETURNS: [[{"sku": MUG, "quantity": 1}], [{"sku": MUG, "quantity": 1}]],
    REFUND_FAILS: [[]],
}
DISPUTES = {DISPUTE_WON: "won", DISPUTE_LOST: "lost"}
# Znode's payment status while a dispute is open and once decided (table
# znode-dispute-states).
DISPUTE_PAYMENT_STATUS = {"open": "Pending", "won": "Captured", "lost": "Refunded"}
SYSTEMS = ("platform", "znode", "stripe", "erp")
RETURN_PROCESSED, RETURN_IN_REVIEW = 80, 30  # Znode return states (reference §5.1)


def basket(after: str, total: Decimal) -> list[dict]:
    """The order's lines: what its after-sales needs (two of a unit, two lines)."""
    if after in (UNIT_RETURN, TWO_RETURNS):
        unit = max(Decimal("2.50"), (total / 2).quantize(CENT, ROUND_DOWN))
        return [{"sku": MUG, "quantity": 2, "price": str(unit)}]
    if after == LINE_RETURN:
        cap = (total * Decimal("0.3")).quantize(CENT)
        return [
            {"sku": MUG, "quantity": 1, "price": str(total - cap)},
            {"sku": CAP, "quantity": 1, "price": str(cap)},
        ]
    return [{"sku": MUG, "quantity": 1, "price": str(total)}]


@dataclass
class DemoOrder:
    number: str
    total: Decimal
    token: str
    setting: int
    charge: str
    expected: str
    placed_at: float
    after: str = ""
    """The after-sales this order is for (its basket is shaped for it)."""
    test_card: bool = False
    """Placed for its after-sales with a test card: not one of the shoppers' orders."""
    payment_status: str | None = "Captured"
    """What Znode's payment status should say when paid; None: not checked (a dispute
    is opened at the capture: checked when it is decided)."""
    shipped: bool = False
    paid_on_page: bool = False
    checks: dict[str, bool] = field(default_factory=dict)
    znode: dict = field(default_factory=dict)
    """The order as Znode showed it at the last check."""

    @property
    def charge_id(self) -> str:
        """The Stripe charge: the payment app's, or the one Znode shows paid."""
        return self.charge or str(self.znode.get("TransactionId") or "")


@dataclass
class Row:
    """One refund or dispute as the systems show it."""

    what: str
    reference: str
    amount: Decimal
    outcome: str
    """Its status in Stripe."""
    wrong: dict[str, list[str]]
    """What each system shows that it should not."""
    doubled: list[str] = field(default_factory=list)
    """Notes Znode shows twice (told, not failed: no money is shown twice)."""
    broken: bool = False
    """Wrong for good: a system holds it more than once (waiting cannot mend that)."""

    def expect(self, system: str, ok: bool, otherwise: str, *, for_good: bool = False) -> None:
        self.wrong.setdefault(system, [])
        if not ok:
            self.wrong[system].append(otherwise)
            self.broken = self.broken or for_good

    def expect_one(self, system: str, found: list, what: str) -> None:
        self.expect(system, len(found) == 1, f"{len(found)} {what}", for_good=len(found) > 1)

    def expect_notes(self, notes: list[str], count: int) -> None:
        """``count`` different notes name it in Znode; one written twice is told."""
        self.expect("znode", len(set(notes)) == count, f"{len(set(notes))} notes name it")
        self.doubled += sorted({n for n in notes if notes.count(n) > 1})

    @property
    def checks(self) -> dict[str, bool]:
        return {system: not self.wrong.get(system, [None]) for system in SYSTEMS}


@dataclass
class AfterSale:
    kind: str
    order: DemoOrder
    started_at: datetime | None = None
    returns: list[tuple[str, Decimal]] = field(default_factory=list)
    """(Znode return number, its TotalReturnAmount)."""
    approved: bool = False
    """The store's admin approved the returns."""
    refund: str = ""
    """The Dashboard refund made."""
    refund_amount: Decimal = Decimal(0)
    dispute: str = ""
    open_status: str = ""
    """Znode's payment status when the open dispute was decided."""
    failing: bool = False
    """Stripe's scheduled work ran: the refund failed at the bank."""
    rows: list[Row] = field(default_factory=list)
    totals: tuple[int, int, int, int] = (0, 0, 0, 0)
    """Refunded (minor units): expected, Stripe, platform, ERP."""
    announced: bool = False

    @property
    def expected_refunded(self) -> Decimal:
        if self.kind == REFUND_FAILS or self.kind in DISPUTES:
            return Decimal(0)
        return sum((amount for _, amount in self.returns), self.refund_amount)

    @property
    def totals_agree(self) -> bool:
        return len(set(self.totals)) == 1

    @property
    def broken(self) -> bool:
        return any(r.broken for r in self.rows)

    @property
    def agree(self) -> bool:
        """Every system shows it, and the order's own checks hold."""
        return bool(
            self.started_at
            and all(self.order.checks.values())
            and self.rows
            and all(all(r.checks.values()) for r in self.rows)
            and self.totals_agree
        )


@dataclass
class Seen:
    """What Znode and the ERP hold, read once per round."""

    znode: dict
    memos: list[dict]
    entries: list[dict]


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = __doc__.split("\n\n")[0]

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=0, help="0: keep placing orders.")
        parser.add_argument("--interval", type=float, default=0.5, help="Seconds between orders.")
        parser.add_argument("--exit-when-settled", action="store_true")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sandbox-port", type=int, default=8100)
        parser.add_argument("--timeout", type=float, default=600, help="Seconds to settle.")
        parser.add_argument("--seed", type=int, default=42)

    def handle(self, *args, **options):
        self.children: list[subprocess.Popen] = []
        self.rng = random.Random(options["seed"])
        self.shoppers = 0  # orders the shoppers placed
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            return self.run(**options)
        except KeyboardInterrupt:
            self.stdout.write("\nstopping")
        finally:
            self.stop_children()

    # --- set-up ------------------------------------------------------------------------
    def run(self, *, orders, interval, exit_when_settled, port, sandbox_port, timeout, seed, **_):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("install_flows", verbosity=0)
        call_command("ensure_admin")
        self.sandbox = f"http://127.0.0.1:{sandbox_port}"
        self.platform = f"http://127.0.0.1:{port}"
        self.start_sandbox(sandbox_port, seed)
        self.devnull = io.StringIO()  # what the wiring commands print is not the demo's
        integration = self.wire()
        self.save_cards()
        self.payouts = PayoutsDemo(
            sandbox=self.sandbox,
            stripe_key=STRIPE_KEY,
            erp_token=ERP_TOKEN,
            card_setting=GATEWAY_SETTING,
            out=self.stdout,
        )
        self.payouts.configure()
        self.profiles = ProfilesDemo(
            sandbox=self.sandbox,
            stripe_key=STRIPE_KEY,
            store_domain=STORE_DOMAIN,
            store_key=STORE_KEY,
            out=self.stdout,
        )
        linked = self.profiles.backfill(integration.name)
        self.stdout.write(f"customers linked by the backfill: {linked}")
        cards_ok = self.profiles.cards_shown(integration, SAVED_CARDS)
        self.start_platform(port)
        self.register_webhooks(integration)
        self.stdout.write(f"admin:   {self.platform}/admin/  (login above)")
        self.stdout.write(f"sandbox: {self.sandbox}  (faults: {self.sandbox}/_sandbox/faults)")
        self.run_started = timezone.now()
        self.sale_calls: dict[str, int] | None = None
        if not exit_when_settled:
            return self.run_forever(orders, interval)
        rounds = max(1, orders // AFTER_SALES_PER)
        self.to_deal, self.deal_every, self.paid_dealt = list(ON_PAID_ORDERS) * rounds, 1, 0
        placed = self.place_orders(orders, interval)
        self.payouts.place()  # shoppers paying in EUR and GBP
        self.profiles.change()  # returning customers change their profiles meanwhile
        extra = self.place_test_card_orders(rounds)
        cases = [AfterSale(d.after, d) for d in placed + extra if d.after]
        sold, ok = self.settle(placed, extra, cases, timeout)
        profiles_ok = self.profiles.settle()
        self.report(placed)
        self.report_after_sales(cases)
        self.profiles.report(linked)
        self.report_drift(integration)  # over the day's orders, before the payout days
        payouts_ok = self.payouts.settle(integration, timeout)
        payouts_ok = self.payouts.report(integration) and payouts_ok
        if not sold:
            raise CommandError("Znode, Stripe and the ERP do not agree on every order")
        if not ok:
            raise CommandError(
                "the platform, Znode, Stripe and the ERP do not agree on every refund and dispute"
            )
        if not profiles_ok:
            raise CommandError("a customer's profile change did not reach the other side")
        if not cards_ok:
            raise CommandError("a returning customer's saved cards are not on its link")
        if not payouts_ok:
            raise CommandError(
                "a payout did not tie out and post, or the ERP's clearing account is not at zero"
            )
        self.stdout.write(self.style.SUCCESS("all orders settled and consistent"))
        return None

    def run_forever(self, orders: int, interval: float) -> None:
        """Orders at a steady pace; one in three paid ones gets after-sales, and each
        round of those brings orders paid with the test cards."""
        self.to_deal, self.deal_every, self.paid_dealt = [], 3, 0
        placed = self.place_orders(orders, interval)
        self.profiles.change()  # returning customers change their profiles
        cases: list[AfterSale] = []
        self.stdout.write("placing an order every few seconds; Ctrl-C stops the demo")
        while True:
            new = []
            if not self.to_deal:  # a new round
                new += self.place_test_card_orders(1)
                self.to_deal = list(ON_PAID_ORDERS)
            new += self.place_orders(1, 0)
            placed += new
            cases += [AfterSale(d.after, d) for d in new if d.after]
            self.ship_authorized(placed)
            self.pay_links(placed)
            pending = [c for c in cases if not c.announced]
            if pending:
                entries = self.erp_list("journal-entries")
                for case in pending:
                    case.order.checks = self.verify_order(case.order, entries)
                self.after_sales(pending, self.seen(entries))
            time.sleep(max(interval, 3.0))

    def start_sandbox(self, port: int, seed: int) -> None:
        self.spawn([sys.executable, "-m", "sandbox", "--port", str(port), "--seed", str(seed)])
        self.wait_until(f"{self.sandbox}/_sandbox/health", "sandbox")
        requests.post(f"{self.sandbox}/_sandbox/reset", timeout=10)

    def start_platform(self, port: int) -> None:
        multiprocess_dir_clear()  # the metrics of an earlier run's processes
        env = {**os.environ, "Q_WORKERS": os.environ.get("Q_WORKERS", "4")}
        self.spawn(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            env=env,
            quiet=True,
        )
        self.spawn([sys.executable, "manage.py", "worker"], env=env, quiet=True)
        self.wait_until(f"{self.platform}/health/live/", "platform")

    def spawn(self, command: list[str], env=None, quiet: bool = False) -> None:
        out = subprocess.DEVNULL if quiet else None
        self.children.append(
            processes.spawn(command, cwd=settings.BASE_DIR, env=env, stdout=out, stderr=out)
        )

    def stop_children(self) -> None:
        processes.stop(self.children)

    def wait_until(self, url: str, what: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise CommandError(f"the {what} did not start at {url}")

    def wire(self) -> Integration:
        """Connections and the integration through the operator's CLI: created on the
        first run, repointed at this sandbox on later ones."""

        def connection(name, kind, base_url, credentials, settings_):
            existing = Connection.objects.filter(name=name).first()
            options = [f"--setting={k}={v}" for k, v in settings_.items()]
            if existing is None:
                secret = (
                    "Bearer " + secrets.token_urlsafe(16)
                    if kind == "znode"
                    else "whsec_" + secrets.token_urlsafe(24)
                )
                call_command(
                    "connection",
                    "create",
                    f"--kind={kind}",
                    f"--name={name}",
                    f"--base-url={base_url}",
                    *[f"--credential={k}={v}" for k, v in credentials.items()],
                    *([f"--webhook-secret={secret}"] if kind != "erp" else []),
                    "--rate-limit=50",
                    *options,
                    stdout=self.devnull,
                )
            else:
                call_command(
                    "connection",
                    "update",
                    name,
                    f"--base-url={base_url}",
                    "--enable",
                    "--reason=repointed by the demo",
                    *options,
                    stdout=self.devnull,
                )
            return Connection.objects.get(name=name)

        znode = connection(
            "demo-znode",
            "znode",
            f"{self.sandbox}/znode",
            {"domain_name": STORE_DOMAIN, "domain_key": STORE_KEY},
            {"store_domain": STORE_DOMAIN, "poll": "false", "timezone": STORE_TIMEZONE},
        )
        stripe = connection(
            "demo-stripe", "stripe", f"{self.sandbox}/stripe", {"api_key": STRIPE_KEY}, {}
        )
        connection("demo-erp", "erp", f"{self.sandbox}/erp", {"token": ERP_TOKEN}, {})
        self.znode_secret = znode.secret_list()[0]
        self.stripe_secret = stripe.secret_list()[0]
        settings_ = [
            f"--setting=collection_modes={COLLECTION_MODES}",
            f"--setting=checkout_success_url={CHECKOUT_SUCCESS_URL}",
        ]
        if not Integration.objects.filter(name="demo").exists():
            call_command(
                "integration",
                "create",
                "--name=demo",
                "--znode=demo-znode",
                "--stripe=demo-stripe",
                "--erp=demo-erp",
                *settings_,
                stdout=self.devnull,
            )
        else:
            call_command(
                "integration",
                "update",
                "demo",
                "--znode=demo-znode",
                "--stripe=demo-stripe",
                "--erp=demo-erp",
                "--enable",
                "--reason=rewired by the demo",
                *settings_,
                stdout=self.devnull,
            )
        return Integration.objects.get(name="demo")

    def save_cards(self) -> None:
        """Customers who saved a card in Stripe earlier (support, an older checkout)."""
        for user_id, (email, card) in SAVED_CARDS.items():
            requests.post(
                f"{self.sandbox}/stripe/v1/customers",
                headers={"Authorization": f"Bearer {STRIPE_KEY}"},
                data={
                    "email": email,
                    "metadata[znode_user_id]": str(user_id),
                    "payment_method": card,
                    "invoice_settings[default_payment_method]": card,
                },
                timeout=10,
            ).raise_for_status()

    def register_webhooks(self, integration: Integration) -> None:
        for kind, connection, secret in (
            ("znode", integration.znode, self.znode_secret),
            ("stripe", integration.stripe, self.stripe_secret),
        ):
            response = requests.post(
                f"{self.sandbox}/_sandbox/webhooks/{kind}",
                json={"url": self.platform + connection.webhook_path, "secret": secret},
                timeout=10,
            )
            response.raise_for_status()

    # --- shoppers ----------------------------------------------------------------------------
    def place_orders(self, count: int, interval: float) -> list[DemoOrder]:
        placed = []
        weights = [s[4] for s in SCENARIOS]
        for _ in range(count):
            # Every way of paying once first, then shoppers in their usual shares.
            index, self.shoppers = self.shoppers, self.shoppers + 1
            scenario = SCENARIOS[index] if index < len(SCENARIOS) else None
            scenario = scenario or self.rng.choices(SCENARIOS, weights)[0]
            token, user, setting, expected, _share = scenario
            total = Decimal(self.rng.randrange(500, 25000)) / 100
            placed.append(self.place(token, user, setting, expected, total, self.deal(expected)))
            if interval:
                time.sleep(interval)
        return placed

    def deal(self, expected: str) -> str:
        """The after-sales a shopper's order is placed for: the next one waiting, for
        one paid order in ``deal_every``."""
        if expected != "paid" or not self.to_deal:
            return ""
        self.paid_dealt += 1
        return self.to_deal.pop(0) if self.paid_dealt % self.deal_every == 0 else ""

    def place_test_card_orders(self, rounds: int) -> list[DemoOrder]:
        """Orders for the after-sales that need a card of their own (a refund that fails,
        disputes), and for any the shoppers' paid orders were too few to take."""
        kinds, self.to_deal = [*self.to_deal, *list(TEST_CARDS) * rounds], []
        return [
            self.place(
                TEST_CARDS.get(kind, "pm_card_visa"),
                11,
                GATEWAY_SETTING,
                "paid",
                Decimal(self.rng.randrange(500, 25000)) / 100,
                kind,
                test_card=True,
            )
            for kind in kinds
        ]

    def place(
        self,
        token: str,
        user: int,
        setting: int,
        expected: str,
        total: Decimal,
        after: str = "",
        test_card: bool = False,
    ) -> DemoOrder:
        body = {"user_id": user, "lines": basket(after, total), "payment_setting_id": setting}
        if token not in ("saved", "link"):
            body["card"] = token  # typed into Znode's checkout
        response = requests.post(f"{self.sandbox}/znode/_test/orders", json=body, timeout=10)
        response.raise_for_status()
        order = response.json()["Order"]
        demo = DemoOrder(
            number=order["OrderNumber"],
            total=Decimal(str(order["Total"])),
            token=token,
            setting=setting,
            charge=str(order.get("TransactionId") or ""),
            expected=expected,
            placed_at=time.monotonic(),
            after=after,
            test_card=test_card,
            payment_status=None if after in DISPUTES else "Captured",
        )
        self.stdout.write(
            f"placed {demo.number} {demo.total} USD with {token}" + (f" ({after})" if after else "")
        )
        return demo

    def ship_authorized(self, placed: list[DemoOrder]) -> None:
        """The warehouse ships authorized orders a little later; that captures them."""
        from payments.choices import OrderState
        from payments.models import Order

        for demo in placed:
            if demo.setting not in ADOPTED_SETTINGS or demo.shipped:
                continue
            if Order.objects.filter(order_number=demo.number, state=OrderState.AUTHORIZED).exists():
                requests.post(
                    f"{self.sandbox}/znode/_test/orders/{demo.number}/ship",
                    json={"tracking_number": f"1Z{demo.number[-6:]}"},
                    timeout=10,
                ).raise_for_status()
                demo.shipped = True
                self.stdout.write(f"shipped {demo.number}")

    def pay_links(self, placed: list[DemoOrder]) -> None:
        """Customers who got the payment page's link pay there with their card."""
        from payments.models import Payment

        for demo in placed:
            if demo.setting != LINK_SETTING or demo.paid_on_page:
                continue
            page = (
                Payment.objects.filter(order__order_number=demo.number)
                .exclude(checkout_session_id="")
                .first()
            )
            if page is None:
                continue  # the link has not gone out yet
            requests.post(
                f"{self.sandbox}/stripe/_test/checkout/sessions/{page.checkout_session_id}/pay",
                json={"payment_method": "pm_card_visa"},
                timeout=10,
            ).raise_for_status()
            demo.paid_on_page = True
            self.stdout.write(f"paid {demo.number} on the Stripe payment page")

    # --- after-sales ------------------------------------------------------------------------
    def after_sales(self, cases: list[AfterSale], seen: Seen) -> None:
        """Each case acts once its order is paid and consistent (a dispute: once it is
        open and shown), then is checked in every system."""
        for case in cases:
            if case.started_at is None and self.ready(case, seen):
                self.act(case)
                case.started_at = timezone.now()
            elif case.returns and not case.approved:
                self.approve(case)
            elif case.started_at is not None:
                self.verify_after_sale(case, seen)
                if case.agree and not case.announced:
                    case.announced = True
                    self.stdout.write(
                        f"{case.order.number} {case.kind}: the platform, Znode, Stripe and "
                        "the ERP agree"
                    )
        self.fail_refunds([c for c in cases if c.kind == REFUND_FAILS], seen)

    def ready(self, case: AfterSale, seen: Seen) -> bool:
        from payments.models import Dispute

        order = case.order
        if not all(order.checks.values()):
            return False
        if case.kind not in DISPUTES:
            return True
        # Disputed when captured: decided once the platform has shown it open in Znode
        # and the ERP has the withdrawal.
        disputes = self.stripe("GET", "/v1/disputes", params={"charge": order.charge_id})["data"]
        if not disputes:
            return False
        dispute = disputes[0]
        ours = Dispute.objects.filter(stripe_dispute_id=dispute["id"]).first()
        withdrawn = f"dispute:{dispute['id']}:{dispute['balance_transactions'][0]['id']}"
        if (
            ours is not None
            and "open" in ours.znode_noted
            and any(e["external_reference"] == withdrawn for e in seen.entries)
        ):
            case.dispute = dispute["id"]
            return True
        return False

    def act(self, case: AfterSale) -> None:
        order = case.order
        if case.kind in RETURNS:
            # The shopper sends it back; the store approves it a little later.
            for lines in RETURNS[case.kind]:
                made = self.znode_test("/returns", {"order_number": order.number, "lines": lines})
                case.returns.append(
                    (
                        made["Return"]["ReturnNumber"],
                        Decimal(str(made["Return"]["TotalReturnAmount"])),
                    )
                )
                self.stdout.write(
                    f"{order.number}: the shopper returns {case.returns[-1][1]} USD "
                    f"({case.returns[-1][0]})"
                )
            refunded = sum(amount for _, amount in case.returns)
            full = refunded >= order.total and case.kind != REFUND_FAILS
            order.payment_status = "Refunded" if full else "Captured"
        elif case.kind == DASHBOARD:
            case.refund_amount = max(Decimal("1.00"), (order.total * Decimal("0.4")).quantize(CENT))
            made = self.stripe(
                "POST",
                "/v1/refunds",
                data={
                    "charge": order.charge_id,
                    "amount": money.to_minor_units(case.refund_amount, "USD"),
                },
            )
            case.refund = made["id"]
            self.stdout.write(
                f"{order.number}: the merchant refunds {case.refund_amount} USD in the Stripe "
                f"Dashboard ({case.refund})"
            )
        else:
            outcome = DISPUTES[case.kind]
            if outcome == "won":  # the card network decides for the merchant
                self.stripe(
                    "POST", f"/_test/disputes/{case.dispute}/resolve", data={"status": "won"}
                )
            else:  # the merchant accepts it
                self.stripe("POST", f"/v1/disputes/{case.dispute}/close")
            case.open_status = str(self.znode_order(order.number).get("PaymentStatus"))
            order.payment_status = DISPUTE_PAYMENT_STATUS[outcome]
            self.stdout.write(f"{order.number}: dispute {case.dispute} {outcome}")

    def approve(self, case: AfterSale) -> None:
        """The store's admin approves the returns once they are in (the platform has
        seen them submitted and has nothing running for the order), as a person would,
        not in the same instant."""
        from integrations.choices import JobStatus
        from integrations.models import Job
        from payments.models import Return

        numbers = [number for number, _ in case.returns]
        seen = Return.objects.filter(
            return_number__in=numbers, created_at__gte=self.run_started
        ).count()
        busy = (
            Job.objects.filter(reference=case.order.number, created_at__gte=self.run_started)
            .exclude(status__in=(JobStatus.SUCCEEDED, JobStatus.QUARANTINED, JobStatus.DISCARDED))
            .exists()
        )
        if seen < len(numbers) or busy:
            return
        for number in numbers:
            self.znode_test(f"/returns/{number}/state", {"state": "Approved"})
            self.stdout.write(f"{case.order.number}: the store approves return {number}")
        case.approved = True

    def fail_refunds(self, cases: list[AfterSale], seen: Seen) -> None:
        """Once every refund to a refundFail card has succeeded and been credited in the
        ERP, Stripe's scheduled work runs: the bank returns them."""
        waiting = [c for c in cases if not c.failing]
        if not waiting or any(c.started_at is None for c in waiting):
            return
        memos = {m["external_reference"] for m in seen.memos}
        refunds = {case.order.number: self.refunds_of(case.order) for case in waiting}
        if not all(refunds.values()) or any(
            f"refund:{r['id']}" not in memos for made in refunds.values() for r in made
        ):
            return
        self.stripe("POST", "/_test/settle")
        for case in waiting:
            case.failing = True
            made = ", ".join(r["id"] for r in refunds[case.order.number])
            self.stdout.write(
                f"{case.order.number}: the bank returns refund {made} (Stripe's scheduled work ran)"
            )

    def verify_after_sale(self, case: AfterSale, seen: Seen) -> None:
        """A row per refund or dispute, each system read for itself, and the order's
        refunded totals."""
        from payments.choices import RefundStatus
        from payments.models import Refund

        order = case.order
        charge = self.stripe("GET", f"/v1/charges/{order.charge_id}")
        refunds = self.refunds_of(order)
        rows: list[Row] = []
        if case.kind in RETURNS:
            for number, amount in case.returns:
                made = [r for r in refunds if r["metadata"].get(METADATA_RETURN_NUMBER) == number]
                rows.append(self.refund_row(case, seen, made, amount, number))
        elif case.kind == DASHBOARD:
            made = [r for r in refunds if r["id"] == case.refund]
            rows.append(self.refund_row(case, seen, made, case.refund_amount))
        else:
            rows.append(self.dispute_row(case, seen))
        succeeded = Refund.objects.filter(
            order__order_number=order.number,
            status=RefundStatus.SUCCEEDED,
            created_at__gte=self.run_started,
        ).values_list("amount_minor", flat=True)
        mine = re.compile(rf"Order {re.escape(order.number)}\b")
        credited = sum(
            (Decimal(m["amount"]) for m in seen.memos if mine.match(m["memo"])), Decimal(0)
        )
        reversed_ = sum(
            (
                Decimal(line["debit"])
                for e in seen.entries
                if e["external_reference"].startswith("refund-failed:") and mine.match(e["memo"])
                for line in e["lines"]
            ),
            Decimal(0),
        )
        case.totals = (
            money.to_minor_units(case.expected_refunded, "USD"),
            charge.get("amount_refunded", -1),
            sum(succeeded),
            money.to_minor_units(credited - reversed_, "USD"),
        )
        case.rows = rows

    def refund_row(
        self, case: AfterSale, seen: Seen, made: list[dict], amount: Decimal, number: str = ""
    ) -> Row:
        """``made``: the Stripe refunds of the charge that are this one (of the return
        ``number``, or the Dashboard's)."""
        from integrations.choices import JobStatus
        from integrations.models import Job
        from payments.choices import RefundOrigin, ReturnState
        from payments.models import Refund

        refund = made[0] if made else {}
        order, row = case.order, Row(number, refund.get("id", ""), amount, "", {})
        row.outcome = refund.get("status", "missing")
        row.expect_one("stripe", made, "Stripe refunds")
        failed = case.kind == REFUND_FAILS
        expected = "failed" if failed else "succeeded"
        refund_id, minor = row.reference, money.to_minor_units(amount, "USD")
        row.expect("stripe", row.outcome == expected, f"Stripe shows it {row.outcome}")
        row.expect(
            "stripe", refund.get("amount") == minor, f"Stripe refunded {refund.get('amount')}"
        )
        ours = Refund.objects.filter(stripe_refund_id=refund_id).first() if refund_id else None
        row.expect("platform", ours is not None, "no refund row")
        if ours is not None:
            row.expect("platform", ours.status == expected, f"its row is {ours.status}")
            row.expect("platform", ours.amount_minor == minor, f"its row has {ours.amount_minor}")
            back = ours.return_request
            if number:
                row.expect(
                    "platform",
                    back is not None
                    and back.return_number == number
                    and back.state
                    == (ReturnState.REFUND_FAILED if failed else ReturnState.REFUNDED),
                    f"its return row is {back.return_number if back else None} "
                    f"{back.state if back else ''}",
                )
            else:
                row.expect("platform", ours.origin == RefundOrigin.OUTSIDE, f"origin {ours.origin}")
        if failed:  # the job that saw it fail waits for a person, with Stripe's reason
            row.expect(
                "platform",
                Job.objects.filter(
                    status=JobStatus.QUARANTINED,
                    last_error__contains=refund_id,
                    created_at__gte=self.run_started,
                ).exists(),
                "no quarantined job names it",
            )
        # Znode: the order history (negative amount), the return, the payment status.
        details = order.znode.get("OmsOrderDetailsId")
        history = [
            h
            for h in seen.znode["order_history"]
            if h["OmsOrderDetailsId"] == details and refund_id and h["TransactionId"] == refund_id
        ]
        row.expect_one("znode", history, "order history rows name it")
        row.expect(
            "znode",
            all(Decimal(str(h["OrderAmount"])) == -amount for h in history),
            "the order history has another amount",
        )
        shown = order.znode.get("PaymentStatus")
        row.expect("znode", shown == order.payment_status, f"payment status {shown}")
        if number:
            record = next(
                (r for r in seen.znode["returns"].values() if r["ReturnNumber"] == number), {}
            )
            recorded = [
                h
                for h in seen.znode["return_history"]
                if h["RmaReturnDetailsId"] == record.get("RmaReturnDetailsId")
                and h["TransactionId"] == refund_id
            ]
            row.expect_one("znode", recorded, "return history rows name it")
            state = record.get("RmaReturnStateId")
            wanted = RETURN_IN_REVIEW if failed else RETURN_PROCESSED
            row.expect("znode", state == wanted, f"the return is in state {state}")
        row.expect_notes([n for n in self.notes(order) if refund_id and refund_id in n], 1 + failed)
        memos = [m for m in seen.memos if m["external_reference"] == f"refund:{refund_id}"]
        row.expect_one("erp", memos, "credit memos")
        row.expect(
            "erp", all(Decimal(m["amount"]) == amount for m in memos), "a memo of another amount"
        )
        if failed:  # the credit memo reversed
            reversals = [
                e for e in seen.entries if e["external_reference"] == f"refund-failed:{refund_id}"
            ]
            row.expect_one("erp", reversals, "reversals of its memo")
        return row

    def dispute_row(self, case: AfterSale, seen: Seen) -> Row:
        from payments.models import Dispute

        order = case.order
        expected = DISPUTES[case.kind]
        dispute = self.stripe("GET", f"/v1/disputes/{case.dispute}")
        row = Row("", case.dispute, money.from_minor_units(dispute["amount"], "USD"), "", {})
        row.outcome = dispute["status"]
        others = self.stripe("GET", "/v1/disputes", params={"charge": order.charge_id})["data"]
        row.expect("stripe", row.outcome == expected, f"Stripe shows it {row.outcome}")
        row.expect_one("stripe", others, "disputes on the charge")
        ours = Dispute.objects.filter(stripe_dispute_id=case.dispute).first()
        row.expect("platform", ours is not None, "no dispute row")
        if ours is not None:
            row.expect("platform", ours.outcome == expected, f"its row says {ours.outcome!r}")
            row.expect("platform", ours.reason == dispute["reason"], f"reason {ours.reason!r}")
            row.expect("platform", ours.evidence_due_by is not None, "no evidence due date")
            row.expect(
                "platform",
                ours.funds_withdrawn == (expected == "lost"),
                f"funds withdrawn: {ours.funds_withdrawn}",
            )
        row.expect_notes([n for n in self.notes(order) if case.dispute in n], 2)  # opened, decided
        flagged = DISPUTE_PAYMENT_STATUS["open"]
        row.expect(  # seen when it was decided
            "znode", case.open_status == flagged, f"{case.open_status} while open", for_good=True
        )
        shown = order.znode.get("PaymentStatus")
        row.expect("znode", shown == order.payment_status, f"payment status {shown}")
        # A journal entry per balance transaction: the withdrawal, and the reinstatement
        # of a dispute won.
        moved = {f"dispute:{case.dispute}:{t['id']}" for t in dispute["balance_transactions"]}
        posted = {
            e["external_reference"]
            for e in seen.entries
            if e["external_reference"].startswith(f"dispute:{case.dispute}:")
        }
        row.expect("erp", len(moved) == (2 if expected == "won" else 1), f"{len(moved)} moves")
        row.expect("erp", posted == moved, f"{len(posted)} journal entries for {len(moved)} moves")
        return row

    def refunds_of(self, order: DemoOrder) -> list[dict]:
        return self.stripe("GET", "/v1/refunds", params={"charge": order.charge_id, "limit": 100})[
            "data"
        ]

    def notes(self, order: DemoOrder) -> list[str]:
        return [str(n.get("Notes") or "") for n in order.znode.get("OrderNotes") or []]

    def seen(self, entries: list[dict]) -> Seen:
        return Seen(
            znode=requests.get(f"{self.sandbox}/znode/_test/state", timeout=10).json(),
            memos=self.erp_list("credit-memos"),
            entries=entries,
        )

    # --- the sandbox, as shoppers, the store and the merchant use it -------------------------
    def stripe(self, method: str, path: str, *, data=None, params=None) -> dict:
        response = requests.request(
            method,
            f"{self.sandbox}/stripe{path}",
            headers={"Authorization": f"Bearer {STRIPE_KEY}"},
            data=data,
            params=params,
            timeout=10,
        )
        response.raise_for_status()
        return response.json()

    def znode_order(self, number: str) -> dict:
        """The order as the store's admin sees it (fresh, every expand)."""
        return requests.get(f"{self.sandbox}/znode/_test/orders/{number}", timeout=10).json()[
            "Order"
        ]

    def znode_test(self, path: str, body: dict) -> dict:
        response = requests.post(f"{self.sandbox}/znode/_test{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def erp_list(self, kind: str) -> list[dict]:
        """Every document of ``kind``, page after page (the ERP pages its lists)."""
        documents, url = [], f"{self.sandbox}/erp/api/{kind}?page_size=500"
        while url:
            page = requests.get(
                url, headers={"Authorization": f"Bearer {ERP_TOKEN}"}, timeout=10
            ).json()
            documents += page["results"]
            url = page.get("next")
        return documents

    # --- checking ----------------------------------------------------------------------------
    def settle(
        self,
        placed: list[DemoOrder],
        extra: list[DemoOrder],
        cases: list[AfterSale],
        timeout: float,
    ) -> tuple[bool, bool]:
        """Until the shoppers' orders settle (their round trips are counted then), then
        their after-sales, until every refund and dispute settles too or is wrong for
        good: (orders consistent, after-sales consistent). The test-card orders'
        after-sales run from the start."""
        deadline = time.monotonic() + timeout
        orders, sold = placed + extra, False
        while True:
            self.ship_authorized(orders)
            self.pay_links(orders)
            entries = self.erp_list("journal-entries")
            for demo in orders:
                demo.checks = self.verify_order(demo, entries)
            done = sum(all(d.checks.values()) for d in placed)
            self.stdout.write(f"settled and consistent: {done}/{len(placed)}")
            if not sold and done == len(placed):
                sold, self.sale_calls = True, self.count_calls(placed)
            self.after_sales([c for c in cases if sold or c.order.test_card], self.seen(entries))
            agreed = sum(c.agree for c in cases)
            if sold:
                self.stdout.write(
                    f"refunds and disputes settled and consistent: {agreed}/{len(cases)}"
                )
            if sold and done == len(placed) and all(c.agree or c.broken for c in cases):
                return True, agreed == len(cases)
            if time.monotonic() > deadline:
                return done == len(placed), False
            time.sleep(1 if sold else 2)

    def verify_order(self, demo: DemoOrder, entries: list[dict]) -> dict[str, bool]:
        from payments.choices import OrderState
        from payments.models import Order

        order = Order.objects.filter(order_number=demo.number).first()
        payment = order.payments.order_by("-id").first() if order else None
        znode = demo.znode = self.znode_order(demo.number)
        platform_ok = bool(order) and order.state == (
            OrderState.PAID if demo.expected == "paid" else OrderState.PAYMENT_FAILED
        )
        minor = money.to_minor_units(demo.total, "USD")
        stripe_ok = erp_ok = znode_ok = False
        auth = {"Authorization": f"Bearer {STRIPE_KEY}"}
        if demo.setting in ADOPTED_SETTINGS:
            # Adopted: the payment app's charge, captured by us, never a second payment.
            charge = requests.get(
                f"{self.sandbox}/stripe/v1/charges/{demo.charge}", headers=auth, timeout=10
            ).json()
            stripe_ok = (
                bool(payment)
                and payment.charge_id == demo.charge
                and not order.payments.exclude(pk=payment.pk).exists()
                and charge.get("captured") is True
                and charge.get("amount_captured") == minor
            )
        elif payment and (payment.payment_intent_id or "").startswith("pi_"):
            intent = requests.get(
                f"{self.sandbox}/stripe/v1/payment_intents/{payment.payment_intent_id}",
                headers=auth,
                timeout=10,
            ).json()
            expected_status = "succeeded" if demo.expected == "paid" else "requires_payment_method"
            stripe_ok = intent.get("status") == expected_status and intent.get("amount") == minor
        entries = [e for e in entries if e["memo"].endswith(f"order {demo.number}")]
        if demo.expected == "paid":
            charge_id = payment.charge_id if payment else None
            rows = history_rows(znode)
            recorded = [p for p in rows if charge_id and p.get("TransactionReference") == charge_id]
            znode_ok = (
                demo.payment_status in (None, znode.get("PaymentStatus"))
                and znode.get("TransactionId") == charge_id
                and len(recorded) == 1
            )
            erp_ok = (
                len(entries) == 1
                and entries[0]["external_reference"] == f"sale:{charge_id}"
                and Decimal(entries[0]["lines"][0]["debit"]) == demo.total
            )
        else:
            znode_ok = znode.get("PaymentStatus") == "Declined"
            erp_ok = not entries  # nothing booked for a declined order
        return {"platform": platform_ok, "znode": znode_ok, "stripe": stripe_ok, "erp": erp_ok}

    def report(self, placed: list[DemoOrder]) -> None:
        mark = {True: "ok", False: "--"}
        self.stdout.write("")
        self.stdout.write(
            f"{'order':<12} {'amount':>9}  {'paid by':<9} {'expected':<8} {'platform':<8} "
            f"{'znode':<6} {'stripe':<6} {'erp':<4} agree"
        )
        for demo in placed:
            c = demo.checks
            self.stdout.write(
                f"{demo.number:<12} {demo.total:>9}  {PAID_BY[demo.setting]:<9} "
                f"{demo.expected:<8} {mark[c['platform']]:<8} "
                f"{mark[c['znode']]:<6} {mark[c['stripe']]:<6} {mark[c['erp']]:<4} "
                f"{'yes' if all(c.values()) else 'NO'}"
            )
        paid = sum(d.expected == "paid" and all(d.checks.values()) for d in placed)
        failed = sum(d.expected == "failed" and all(d.checks.values()) for d in placed)
        pending = len(placed) - paid - failed
        self.stdout.write(f"\npaid {paid}, failed {failed}, pending or inconsistent {pending}")
        self.report_calls(placed)

    def report_drift(self, integration: Integration) -> None:
        """The daily drift check, run now: Znode, Stripe and the ERP read from their own
        state; each mismatch would be a quarantined job (none expected)."""
        from integrations.logging import calls_quieted
        from reconciliation.drift import drift_check

        with calls_quieted():
            # Every order has settled: nothing is left in flight, so no grace.
            report = drift_check(integration=integration, days=1, grace=timedelta(0))
        self.stdout.write(
            f"\ndrift check (Znode, Stripe and the ERP over the last day): checked "
            f"{report.checked}, mismatches {report.found}"
        )

    def count_calls(self, placed: list[DemoOrder]) -> dict[str, int]:
        """Outbound calls (ApiCall rows of the order's jobs) so far, by order."""
        from django.db.models import Count

        from integrations.models import ApiCall

        return dict(
            ApiCall.objects.filter(job__reference__in=[d.number for d in placed])
            .values_list("job__reference")
            .annotate(n=Count("id"))
        )

    def report_calls(self, placed: list[DemoOrder]) -> None:
        """Outbound calls per paid order, by how it was paid, counted when the orders
        had settled (before their after-sales): the cost of the integration in round
        trips."""
        paid = [d for d in placed if d.expected == "paid" and all(d.checks.values())]
        counts = self.sale_calls if self.sale_calls is not None else self.count_calls(placed)
        counts = {d.number: counts.get(d.number, 0) for d in paid}
        by_mode: dict[str, list[int]] = {}
        for demo in paid:
            by_mode.setdefault(PAID_BY[demo.setting], []).append(counts[demo.number])
        total = sum(counts.values())
        detail = ", ".join(f"{mode} {sum(n) / len(n):.1f}" for mode, n in sorted(by_mode.items()))
        if paid:
            self.stdout.write(
                f"outbound calls: {total / len(paid):.1f} per paid order "
                f"({total} calls for {len(paid)} paid orders; {detail})"
            )

    def report_after_sales(self, cases: list[AfterSale]) -> None:
        """The after-sales section: a row per refund and dispute (the order's own checks
        count in each column), the refunded totals per order, the round trips."""
        if not cases:
            return
        mark = {True: "ok", False: "--"}
        self.stdout.write("\nrefunds and disputes, each read from the system that holds it:")
        self.stdout.write(
            f"{'order':<12} {'after-sales':<18} {'return':<15} {'refund or dispute':<28} "
            f"{'amount':>9}  {'status':<10} {'platform':<8} {'znode':<6} {'stripe':<6} "
            f"{'erp':<4} agree"
        )
        counts = {"refunds": 0, "returns": 0, "dashboard": 0, "failed": 0, "won": 0, "lost": 0}
        agreed, doubled = 0, []
        for case in cases:
            sale = case.order.checks
            for row in case.rows or [Row("", "", Decimal(0), "not done", {})]:
                c = {k: bool(row.checks.get(k) and sale.get(k)) for k in SYSTEMS}
                ok = all(c.values()) and case.agree
                agreed += ok
                self.stdout.write(
                    f"{case.order.number:<12} {case.kind:<18} {row.what or '-':<15} "
                    f"{row.reference or '-':<28} {row.amount:>9}  {row.outcome:<10} "
                    f"{mark[c['platform']]:<8} {mark[c['znode']]:<6} "
                    f"{mark[c['stripe']]:<6} {mark[c['erp']]:<4} {'yes' if ok else 'NO'}"
                )
                for system, why in row.wrong.items():
                    if why:
                        self.stdout.write(f"{'':<12} {system}: {'; '.join(why)}")
                doubled += [(case.order.number, note) for note in row.doubled]
                if case.kind in DISPUTES:
                    counts[DISPUTES[case.kind]] += 1
                    continue
                counts["refunds"] += 1
                counts["failed" if case.kind == REFUND_FAILS else "returns"] += bool(row.what)
                counts["dashboard"] += case.kind == DASHBOARD
        self.stdout.write(
            "\nrefunded per order: expected = Stripe (amount_refunded) = platform (refunds "
            "succeeded) = ERP (credit memos less reversals)"
        )
        for case in cases:
            shown = " = ".join(f"{money.from_minor_units(t, 'USD')}" for t in case.totals)
            self.stdout.write(
                f"{case.order.number:<12} {case.kind:<18} {shown}  "
                f"{'yes' if case.totals_agree else 'NO'}"
            )
        if doubled:
            self.stdout.write(f"\nnotes Znode shows twice: {len(doubled)}")
            for number, note in doubled:
                self.stdout.write(f"{number:<12} {note[:100]}")
        total_agree = sum(c.totals_agree for c in cases)
        rows = counts["refunds"] + counts["won"] + counts["lost"]
        self.stdout.write(
            f"\nrefunds {counts['refunds']} ({counts['returns']} for returns, "
            f"{counts['dashboard']} in the Stripe Dashboard, {counts['failed']} failed as "
            f"expected: job quarantined, return reopened), disputes "
            f"{counts['won'] + counts['lost']} (won {counts['won']}, lost {counts['lost']}); "
            f"consistent {agreed}, inconsistent {rows - agreed}; refunded totals agree on "
            f"{total_agree}/{len(cases)} orders"
        )
        self.report_after_sales_calls(cases, counts["refunds"], counts["won"] + counts["lost"])

    def report_after_sales_calls(self, cases: list[AfterSale], refunds: int, disputes: int) -> None:
        """Outbound calls of the refund and dispute flows' jobs, and of the jobs that the
        Znode order events those writes raised made."""
        from django.db.models import Q

        from integrations.models import ApiCall

        calls = ApiCall.objects.filter(job__created_at__gte=self.run_started)
        event = "job__flow__trigger_event"
        refund_flows = (
            Q(**{f"{event}__startswith": "return."})
            | Q(**{f"{event}__startswith": "refund."})
            | Q(**{event: "charge.refunded"})
        )
        dispute_flows = Q(**{f"{event}__startswith": "charge.dispute."})
        for_refunds = calls.filter(refund_flows).count()
        for_disputes = calls.filter(dispute_flows).count()
        echoes = sum(
            calls.filter(job__reference=c.order.number, job__created_at__gte=c.started_at)
            .exclude(refund_flows | dispute_flows)
            .count()
            for c in cases
            if c.started_at
        )
        self.stdout.write(
            f"after-sales calls: {for_refunds / max(refunds, 1):.1f} per refund "
            f"({for_refunds} calls for {refunds} refunds), "
            f"{for_disputes / max(disputes, 1):.1f} per dispute ({for_disputes} for {disputes}), "
            f"and {echoes} by the Znode order events they raised"
        )
