"""Every admin model that holds one organization's rows, listed once (like tests/api_matrix.py).

`make(org)` creates one object of the model in `org`. tests/test_admin_tenancy.py checks that a
staff user of another organization cannot list, open, change or act on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class AdminModel:
    app_label: str
    model_name: str
    make: Callable
    action: str | None = None  # an action name to try on the other organization's object
    pages: tuple[str, ...] = ()  # the model's own admin pages taking the object's pk (url names)

    @property
    def id(self) -> str:
        return f"{self.app_label}.{self.model_name}"


def _make_key(org):
    from contacts_crm.models import ApiKey

    return ApiKey.generate(organization=org, name=f"{org.slug} key", scope="read")[0]


def _make_membership(org):
    from .factories import make_staff

    return make_staff(f"member-of-{org.slug}", org).crm_membership


ADMIN_MODELS: list[AdminModel] = [
    AdminModel("contacts_crm", "apikey", _make_key, action="revoke_keys"),
    AdminModel("contacts_crm", "membership", _make_membership),
]


def register(*models: AdminModel) -> None:
    ADMIN_MODELS.extend(models)
