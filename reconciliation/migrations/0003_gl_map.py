"""The GL map's shipped rows (every integration, every currency), and each
integration's ``gl_accounts`` setting, which the map replaces, moved into rows of
that integration."""

from django.db import migrations

# The defaults as shipped when the map came (reconciliation.ledger.DEFAULT_GL_ACCOUNTS
# may change later; a migration keeps what it installed).
SHIPPED = {
    "clearing": ("1150", "Stripe clearing: sales in; refunds, disputes, fees and payouts out"),
    "bank": ("1010", "Bank account Stripe pays out to"),
    "charge": ("4000", "Sales"),
    "refund": ("4100", "Refunds"),
    "dispute": ("4910", "Disputes (chargebacks)"),
    "dispute_fee": ("6120", "Stripe dispute fees"),
    "fee": ("6100", "Stripe fees"),
    "fee:tax": ("6110", "Tax on Stripe fees"),
    "fx": ("7950", "Currency conversion (FX)"),
    "rounding": ("7990", "Rounding to Stripe's amount"),
    "other": ("1190", "Stripe balance: other movements (adjustments, transfers, top-ups)"),
}
# The setting's roles, by the map's key.
ROLES = {
    "clearing": "clearing",
    "sales": "charge",
    "refunds": "refund",
    "disputes": "dispute",
    "dispute_fees": "dispute_fee",
    "rounding": "rounding",
}


def forwards(apps, schema_editor):
    GlAccount = apps.get_model("reconciliation", "GlAccount")
    Integration = apps.get_model("integrations", "Integration")
    for key, (account, description) in SHIPPED.items():
        GlAccount.objects.get_or_create(
            integration=None,
            key=key,
            currency="",
            defaults={"account": account, "description": description},
        )
    for integration in Integration.objects.all():
        stored = (integration.settings or {}).get("gl_accounts")
        if stored is None:
            continue
        for role, account in stored.items():
            key = ROLES.get(role)
            if key and str(account) != SHIPPED[key][0]:
                GlAccount.objects.get_or_create(
                    integration=integration,
                    key=key,
                    currency="",
                    defaults={"account": str(account), "description": SHIPPED[key][1]},
                )
        integration.settings = {
            k: v for k, v in integration.settings.items() if k != "gl_accounts"
        }
        integration.save(update_fields=["settings"])


class Migration(migrations.Migration):
    dependencies = [("reconciliation", "0002_ledger"), ("integrations", "0010_routed_change_written_at")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
