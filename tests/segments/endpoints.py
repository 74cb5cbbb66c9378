"""Registrations for the auth/tenancy matrices (see tests/api_matrix.py, tests/admin_matrix.py)."""

from ..api_matrix import Endpoint, register
from ..factories import make_contact

RULES = {"op": "and", "rules": [{"field": "tags", "operator": "contains_any", "value": ["vip"]}]}


def _list(org):
    from segments.models import ContactList

    contact = make_contact(org, tags=["vip"])
    contact_list = ContactList.objects.create(organization=org, name=f"{org.slug} list")
    contact_list.memberships.create(contact=contact)
    return {"id": contact_list.pk, "contact": str(contact.pk)}


def _segment(org):
    from segments.models import Segment

    make_contact(org, tags=["vip"])
    return {"id": Segment.objects.create(organization=org, name=f"{org.slug} vips", rules=RULES).pk}


def _ids(values):
    return {"contact_ids": [values["contact"]]}


register(
    Endpoint("GET", "/api/v1/lists", write=False),
    Endpoint("POST", "/api/v1/lists", write=True, body={"name": "March campaign"}),
    Endpoint("GET", "/api/v1/lists/{id}", write=False, make=_list),
    Endpoint("PATCH", "/api/v1/lists/{id}", write=True, make=_list, body={"description": "Spring"}),
    Endpoint("PUT", "/api/v1/lists/{id}", write=True, make=_list, body={"name": "Renamed"}),
    Endpoint("DELETE", "/api/v1/lists/{id}", write=True, make=_list),
    Endpoint("GET", "/api/v1/lists/{id}/members", write=False, make=_list),
    Endpoint("POST", "/api/v1/lists/{id}/members", write=True, make=_list, body=_ids),
    Endpoint("POST", "/api/v1/lists/{id}/members/remove", write=True, make=_list, body=_ids),
    Endpoint("GET", "/api/v1/contacts?list={id}", write=False, make=_list),
    Endpoint("GET", "/api/v1/contacts?not_list={id}", write=False, make=_list),
    Endpoint("GET", "/api/v1/contacts/count?list={id}", write=False, make=_list),
    Endpoint("GET", "/api/v1/segments", write=False),
    Endpoint("POST", "/api/v1/segments", write=True, body={"name": "VIPs", "rules": RULES}),
    Endpoint("GET", "/api/v1/segments/{id}", write=False, make=_segment),
    Endpoint("PATCH", "/api/v1/segments/{id}", write=True, make=_segment, body={"description": "Our best"}),
    Endpoint("PUT", "/api/v1/segments/{id}", write=True, make=_segment, body={"name": "VIPs 2", "rules": RULES}),
    Endpoint("DELETE", "/api/v1/segments/{id}", write=True, make=_segment),
    Endpoint("GET", "/api/v1/segments/{id}/members", write=False, make=_segment),
    Endpoint("GET", "/api/v1/segments/{id}/count", write=False, make=_segment),
    # Preview saves nothing, so a read key may call it (write=False: the matrix checks that it works).
    Endpoint("POST", "/api/v1/segments/preview", write=False, body={"rules": RULES}),
    Endpoint("GET", "/api/v1/contacts?segment={id}", write=False, make=_segment),
    Endpoint("GET", "/api/v1/contacts/count?segment={id}", write=False, make=_segment),
)
