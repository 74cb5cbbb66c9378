"""The expression index of every number or date custom-field definition that exists already
(contacts.custom_fields; new definitions get theirs from a job when they are saved)."""

from django.db import migrations


def forwards(apps, schema_editor):
    from contacts.custom_fields import custom_field_indexes_sync

    definitions = apps.get_model("contacts", "CustomField").objects.values_list("organization_id", "pk", "key", "type")
    custom_field_indexes_sync(definitions=list(definitions))


def backwards(apps, schema_editor):
    from contacts.custom_fields import custom_field_indexes_sync

    custom_field_indexes_sync(definitions=[])  # drops them all


class Migration(migrations.Migration):
    # CREATE / DROP INDEX CONCURRENTLY cannot run in a transaction.
    atomic = False

    dependencies = [("contacts", "0007_sort_collation")]

    operations = [migrations.RunPython(forwards, backwards, elidable=True)]
