from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    # The throttle's shared state lives in Django's database cache when there is no Redis; a
    # migration creates its table so that `migrate` (and every test database) has it.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("contacts_crm", "0001_initial")]
    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
