from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _crm_number(value):
    """SQLite helper for custom-field rules: a JSON string holding a number, as a number (else NULL),
    matching the regular expression the PostgreSQL SQL uses (segments.rules.PG_NUMBER_RE)."""
    from .rules import NUMBER_RE

    if isinstance(value, str) and NUMBER_RE.fullmatch(value):
        return float(value)
    return None


def _register_sqlite_functions(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        connection.connection.create_function("crm_number", 1, _crm_number, deterministic=True)


class SegmentsConfig(AppConfig):
    name = "segments"

    def ready(self):
        connection_created.connect(_register_sqlite_functions)
