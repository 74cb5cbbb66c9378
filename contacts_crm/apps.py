from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "contacts_crm"
    verbose_name = "Organizations and API keys"

    def ready(self):
        from django.db.models import Field, ForeignObject

        from .lookups import AnyOf

        Field.register_lookup(AnyOf)
        ForeignObject.register_lookup(AnyOf)  # relations keep lookups of their own
