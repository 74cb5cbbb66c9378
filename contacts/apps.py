from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _register_sqlite_functions(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        # SQLite's lower()/LIKE fold ASCII only; search must find "Élodie" from "élodie".
        connection.connection.create_function(
            "py_casefold", 1, lambda v: v.casefold() if isinstance(v, str) else v, deterministic=True
        )
        from .querysets import sort_fold

        connection.connection.create_function("py_sortfold", 1, sort_fold, deterministic=True)


class ContactsConfig(AppConfig):
    name = "contacts"

    def ready(self):
        connection_created.connect(_register_sqlite_functions)
