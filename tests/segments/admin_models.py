"""Registrations for the auth/tenancy matrices (see tests/api_matrix.py, tests/admin_matrix.py)."""

from ..admin_matrix import AdminModel, register


def _make_list(org):
    from segments.models import ContactList

    return ContactList.objects.create(organization=org, name=f"{org.slug} list")


def _make_segment(org):
    from segments.models import Segment

    return Segment.objects.create(organization=org, name=f"{org.slug} segment",
                                  rules={"field": "state", "operator": "eq", "value": "NC"})


register(
    AdminModel("segments", "contactlist", _make_list, action="delete_selected"),
    AdminModel("segments", "segment", _make_segment, action="delete_selected"),
)
