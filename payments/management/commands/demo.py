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
whose link the platform emails them (the demo plays the customer and pays it). With
``--exit-when-settled`` it waits until every order has settled, prints whether
Znode, Stripe and the ERP agree about each one, and exits 0 only if they all do.
"""

from __future__ import annotations

import io
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal

import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from integrations import processes
from integrations.connectors.znode.mapping import history_rows
from integrations.models import Connection, Integration
from payments import money

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


@dataclass
class DemoOrder:
    number: str
    total: Decimal
    token: str
    setting: int
    charge: str
    expected: str
    placed_at: float
    shipped: bool = False
    paid_on_page: bool = False
    checks: dict[str, bool] = field(default_factory=dict)


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
        self.start_platform(port)
        self.register_webhooks(integration)
        self.stdout.write(f"admin:   {self.platform}/admin/  (login above)")
        self.stdout.write(f"sandbox: {self.sandbox}  (faults: {self.sandbox}/_sandbox/faults)")
        placed = self.place_orders(orders, interval)
        if not exit_when_settled:
            self.stdout.write("placing an order every few seconds; Ctrl-C stops the demo")
            while True:
                placed += self.place_orders(1, 0)
                self.ship_authorized(placed)
                self.pay_links(placed)
                time.sleep(max(interval, 3.0))
        ok = self.settle(placed, timeout)
        self.report(placed)
        if not ok:
            raise CommandError("Znode, Stripe and the ERP do not agree on every order")
        self.stdout.write(self.style.SUCCESS("all orders settled and consistent"))
        return None

    def start_sandbox(self, port: int, seed: int) -> None:
        self.spawn([sys.executable, "-m", "sandbox", "--port", str(port), "--seed", str(seed)])
        self.wait_until(f"{self.sandbox}/_sandbox/health", "sandbox")
        requests.post(f"{self.sandbox}/_sandbox/reset", timeout=10)

    def start_platform(self, port: int) -> None:
        env = {**os.environ, "Q_WORKERS": os.environ.get("Q_WORKERS", "4")}
        self.spawn(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            env=env,
            quiet=True,
        )
        self.spawn([sys.executable, "manage.py", "worker"], env=env, quiet=True)
        self.wait_until(f"{self.platform}/health/", "platform")

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
            body = {
                "user_id": user,
                "lines": [{"sku": "SBX-MUG-11OZ", "quantity": 1, "price": str(total)}],
                "payment_setting_id": setting,
            }
            if token not in ("saved", "link"):
                body["card"] = token  # typed into Znode's checkout
            response = requests.post(f"{self.sandbox}/znode/_test/orders", json=body, timeout=10)
            response.raise_for_status()
            order = response.json()["Order"]
            placed.append(
                DemoOrder(
                    number=order["OrderNumber"],
                    total=Decimal(str(order["Total"])),
                    token=token,
                    setting=setting,
                    charge=str(order.get("TransactionId") or ""),
                    expected=expected,
                    placed_at=time.monotonic(),
                )
            )
            self.stdout.write(f"placed {order['OrderNumber']} {total} USD with {token}")
            if interval:
                time.sleep(interval)
        return placed

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

    # --- checking ----------------------------------------------------------------------------
    def settle(self, placed: list[DemoOrder], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            self.ship_authorized(placed)
            self.pay_links(placed)
            for demo in placed:
                demo.checks = self.verify_order(demo)
            done = sum(all(d.checks.values()) for d in placed)
            self.stdout.write(f"settled and consistent: {done}/{len(placed)}")
            if done == len(placed):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(2)

    def verify_order(self, demo: DemoOrder) -> dict[str, bool]:
        from payments.choices import OrderState
        from payments.models import Order

        order = Order.objects.filter(order_number=demo.number).first()
        payment = order.payments.order_by("-id").first() if order else None
        znode = requests.get(f"{self.sandbox}/znode/_test/orders/{demo.number}", timeout=10).json()[
            "Order"
        ]
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
        entries = requests.get(
            f"{self.sandbox}/erp/api/journal-entries",
            headers={"Authorization": f"Bearer {ERP_TOKEN}"},
            timeout=10,
        ).json()["results"]
        entries = [e for e in entries if e["memo"].endswith(f"order {demo.number}")]
        if demo.expected == "paid":
            charge_id = payment.charge_id if payment else None
            rows = history_rows(znode)
            recorded = [p for p in rows if charge_id and p.get("TransactionReference") == charge_id]
            znode_ok = (
                znode.get("PaymentStatus") == "Captured"
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

    def report_calls(self, placed: list[DemoOrder]) -> None:
        """Outbound calls (ApiCall rows of the order's jobs) per paid order, by how it was
        paid: the cost of the integration in round trips."""
        from django.db.models import Count

        from integrations.models import ApiCall

        paid = [d for d in placed if d.expected == "paid" and all(d.checks.values())]
        counts = dict(
            ApiCall.objects.filter(job__reference__in=[d.number for d in paid])
            .values_list("job__reference")
            .annotate(n=Count("id"))
        )
        by_mode: dict[str, list[int]] = {}
        for demo in paid:
            by_mode.setdefault(PAID_BY[demo.setting], []).append(counts.get(demo.number, 0))
        total = sum(counts.values())
        detail = ", ".join(f"{mode} {sum(n) / len(n):.1f}" for mode, n in sorted(by_mode.items()))
        if paid:
            self.stdout.write(
                f"outbound calls: {total / len(paid):.1f} per paid order "
                f"({total} calls for {len(paid)} paid orders; {detail})"
            )
