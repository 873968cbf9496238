from django.db import migrations


def use_lz4(apps, schema_editor):
    """Webhook bodies are often over the 2 kB TOAST threshold; PostgreSQL's default
    pglz compression then costs noticeable CPU on every intake insert. lz4 (PG 14+)
    compresses several times faster. Other databases are left as they are."""
    connection = schema_editor.connection
    if connection.vendor != "postgresql" or connection.pg_version < 140000:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
            "WHERE name = 'default_toast_compression'"
        )
        row = cursor.fetchone()
    if not row or not row[0]:
        return  # a server built without lz4 keeps pglz
    schema_editor.execute(
        "ALTER TABLE integrations_inboundevent ALTER COLUMN body SET COMPRESSION lz4"
    )


class Migration(migrations.Migration):
    dependencies = [("integrations", "0003_inbox_indexes")]

    operations = [migrations.RunPython(use_lz4, migrations.RunPython.noop)]
