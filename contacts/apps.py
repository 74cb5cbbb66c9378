from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_delete


def _register_sqlite_functions(sender, connection, **kwargs):
    if connection.vendor == "postgresql":
        # Search's fuzzy match is `word <% search_doc`, an operator the trigram index serves but
        # that takes its threshold from this setting only; once per connection (CONN_MAX_AGE
        # keeps them), rather than a SET LOCAL per query that a queryset cannot issue.
        from .search import FUZZY_WORD_THRESHOLD

        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('pg_trgm.word_similarity_threshold', %s, false)",
                           [str(FUZZY_WORD_THRESHOLD)])
        return
    if connection.vendor == "sqlite":
        # SQLite's lower()/LIKE fold ASCII only; search must find "Élodie" from "élodie".
        connection.connection.create_function(
            "py_casefold", 1, lambda v: v.casefold() if isinstance(v, str) else v, deterministic=True
        )
        from .querysets import sort_fold

        connection.connection.create_function("py_sortfold", 1, sort_fold, deterministic=True)


def _drop_custom_field_indexes(sender, instance, **kwargs):
    """A deleted organization's custom-field indexes go with it (its definitions go by cascade,
    which no definition's own delete path sees): the sync finds no definition and drops them."""
    from .custom_fields import custom_field_indexes_schedule

    custom_field_indexes_schedule(org_id=instance.pk)


class ContactsConfig(AppConfig):
    name = "contacts"

    def ready(self):
        from contacts_crm.models import Organization

        connection_created.connect(_register_sqlite_functions)
        post_delete.connect(_drop_custom_field_indexes, sender=Organization,
                            dispatch_uid="contacts.drop_custom_field_indexes")
