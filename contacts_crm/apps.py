from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "contacts_crm"
    verbose_name = "Organizations and API keys"
