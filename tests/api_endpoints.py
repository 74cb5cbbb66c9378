"""Every app's endpoints, registered into the auth/tenancy matrix (tests/api_matrix.py).

Contacts endpoints are listed here; other apps list theirs in tests/<app>/endpoints.py,
imported at the bottom. The admin models of tests/admin_matrix.py register the same way
(tests/<app>/admin_models.py).
"""

from .api_matrix import Endpoint, register
from .factories import make_contact


def _contact(org):
    return {"id": make_contact(org, tags=["vip"]).pk}


def _merge_pair(org):
    return {"id": make_contact(org).pk, "other": make_contact(org).pk}


def _tag(org):
    return {"id": make_contact(org, tags=["vip"]).tags.get().pk}


def _custom_field(org):
    from contacts.models import CustomField

    return {"id": CustomField.objects.create(organization=org, key="plan", type="text").pk}


register(
    Endpoint("GET", "/api/v1/contacts", write=False),
    Endpoint("POST", "/api/v1/contacts", write=True, body={"phone": "+19195550100"}),
    Endpoint("GET", "/api/v1/contacts/count", write=False),
    Endpoint("POST", "/api/v1/contacts/bulk", write=True, body={"contacts": [{"email": "a@example.com"}]}),
    Endpoint("POST", "/api/v1/contacts/bulk-delete", write=True, make=_contact, body=lambda v: {"ids": [str(v["id"])]}),
    Endpoint("POST", "/api/v1/contacts/opt-out", write=True, body={"phone": "+19195550101"}),
    Endpoint("GET", "/api/v1/contacts/opt-outs", write=False),
    Endpoint("GET", "/api/v1/contacts/by-phone/%2B19195550111", write=False,
             make=lambda org: make_contact(org, phone="+19195550111") and {}),
    Endpoint("PATCH", "/api/v1/contacts/by-phone/%2B19195550112", write=True,
             make=lambda org: make_contact(org, phone="+19195550112") and {}, body={"first_name": "Ann"}),
    Endpoint("DELETE", "/api/v1/contacts/by-phone/(919) 555-0113", write=True,
             make=lambda org: make_contact(org, phone="+19195550113") and {}),
    Endpoint("POST", "/api/v1/contacts/verify", write=False, body={"phone": "+19195550114"}),
    Endpoint("GET", "/api/v1/contacts/opt-outs?search=ann", write=False),
    Endpoint("POST", "/api/v1/contacts/opt-out", write=True, body={"email": "out@example.com"}),
    Endpoint("GET", "/api/v1/contacts/{id}", write=False, make=_contact),
    Endpoint("PATCH", "/api/v1/contacts/{id}", write=True, make=_contact, body={"first_name": "Ann"}),
    Endpoint("PUT", "/api/v1/contacts/{id}", write=True, make=_contact, body={"email": "put@example.com"}),
    Endpoint("DELETE", "/api/v1/contacts/{id}", write=True, make=_contact),
    Endpoint("POST", "/api/v1/contacts/{id}/tags", write=True, make=_contact, body={"tags": ["new"]}),
    Endpoint("DELETE", "/api/v1/contacts/{id}/tags/vip", write=True, make=_contact),
    Endpoint("PUT", "/api/v1/contacts/{id}/preferences", write=True, make=_contact, body={"sms": False}),
    Endpoint("POST", "/api/v1/contacts/{id}/merge", write=True, make=_merge_pair,
             body=lambda v: {"contact_ids": [str(v["other"])]}),
    Endpoint("GET", "/api/v1/contacts/{id}/activity", write=False, make=_contact),
    Endpoint("POST", "/api/v1/contacts/{id}/activity", write=True, make=_contact,
             body={"kind": "message_sent", "data": {"body": "hi"}}),
    Endpoint("GET", "/api/v1/tags", write=False),
    Endpoint("POST", "/api/v1/tags", write=True, body={"name": "gold"}),
    Endpoint("GET", "/api/v1/tags/{id}", write=False, make=_tag),
    Endpoint("PATCH", "/api/v1/tags/{id}", write=True, make=_tag, body={"name": "Gold"}),
    Endpoint("DELETE", "/api/v1/tags/{id}", write=True, make=_tag),
    Endpoint("GET", "/api/v1/custom-fields", write=False),
    Endpoint("POST", "/api/v1/custom-fields", write=True, body={"key": "tier", "type": "text"}),
    Endpoint("GET", "/api/v1/custom-fields/{id}", write=False, make=_custom_field),
    Endpoint("PATCH", "/api/v1/custom-fields/{id}", write=True, make=_custom_field, body={"label": "Plan"}),
    Endpoint("PUT", "/api/v1/custom-fields/{id}", write=True, make=_custom_field, body={"key": "plan", "type": "text"}),
    Endpoint("DELETE", "/api/v1/custom-fields/{id}", write=True, make=_custom_field),
)


from .contacts import admin_models as _contacts_admin  # noqa: E402,F401
from .contacts import consent_endpoints as _contacts_consent  # noqa: E402,F401
from .contacts import endpoints as _contacts_exports  # noqa: E402,F401
from .imports import admin_models as _imports_admin  # noqa: E402,F401
from .imports import endpoints as _imports  # noqa: E402,F401
from .segments import admin_models as _segments_admin  # noqa: E402,F401
from .segments import endpoints as _segments  # noqa: E402,F401
