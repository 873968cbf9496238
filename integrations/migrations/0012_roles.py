"""The ops team's roles as groups (integrations/roles.py): Operators, Finance,
Integration developers."""

from django.db import migrations


def install(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    from integrations.roles import roles_install

    # Permissions are made after migrate (post_migrate); the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    # The definition of today, on the models of this migration: a permission of a model
    # a later migration adds is given by that migration's own roles_install.
    roles_install(
        apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"), missing_ok=True
    )


def remove(apps, schema_editor):
    from integrations.roles import ROLES

    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("integrations", "0011_worker_heartbeat_health_index"),
        ("payments", "0008_refund_attempts_and_claims"),
        ("customers", "0003_saved_cards_conflicts_backfill"),
        ("reconciliation", "0008_payout_bundled"),
    ]

    operations = [migrations.RunPython(install, remove)]
