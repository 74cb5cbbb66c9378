"""Registrations for the auth/tenancy matrices (see tests/api_matrix.py, tests/admin_matrix.py)."""

from ..admin_matrix import AdminModel, register
from ..factories import make_contact


def _tag(org):
    from contacts.models import Tag

    return Tag.objects.create(organization=org, name="vip", key="vip")


def _custom_field(org):
    from contacts.models import CustomField

    return CustomField.objects.create(organization=org, key="plan", type="text")


register(
    AdminModel("contacts", "contact", lambda org: make_contact(org, tags=["vip"]), action="opt_out"),
    AdminModel("contacts", "contact", lambda org: make_contact(org, tags=["vip"]), action="merge_contacts"),
    AdminModel("contacts", "tag", _tag),
    AdminModel("contacts", "customfield", _custom_field),
)
