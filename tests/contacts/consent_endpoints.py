"""Issue 10 (consent) in the auth/tenancy matrices: API endpoints and admin models."""

from ..admin_matrix import AdminModel
from ..admin_matrix import register as register_admin
from ..api_matrix import Endpoint, register
from ..factories import make_contact


def _actor():
    from contacts.services import Actor

    return Actor(label="test", source="admin")


def _contact(org):
    return {"id": make_contact(org, tags=["vip"]).pk}


def _trashed(org):
    from contacts.trash import contact_trash

    contact = make_contact(org, tags=["vip"])
    contact_trash(contact=contact, actor=_actor())
    return contact


def _opted_out(org):
    from contacts.services import contact_opt_out

    contact = make_contact(org)
    contact_opt_out(contact=contact, actor=_actor())
    return contact


def _suppression(org):
    from contacts.trash import contact_purge

    contact = _opted_out(org)
    contact_purge(contact=contact, actor=_actor())
    from contacts.models import Suppression

    return Suppression.objects.for_org(org).first()


def _ledger_row(org):
    from contacts.models import ConsentRecord

    return ConsentRecord.objects.filter(contact=_opted_out(org)).first()


def _keyword_settings(org):
    from contacts.models import KeywordSettings

    return KeywordSettings.objects.create(organization=org, opt_out_words="arret")


register(
    Endpoint("GET", "/api/v1/contacts/trash", write=False, make=lambda org: _trashed(org) and {}),
    Endpoint("GET", "/api/v1/contacts/deleted", write=False, make=lambda org: _trashed(org) and {}),
    Endpoint("GET", "/api/v1/contacts/deleted?since=2020-01-01T00:00:00Z", write=False),
    Endpoint("POST", "/api/v1/contacts/{id}/restore", write=True, make=lambda org: {"id": _trashed(org).pk}),
    Endpoint("GET", "/api/v1/contacts/{id}/consent", write=False, make=lambda org: {"id": _opted_out(org).pk}),
    Endpoint("GET", "/api/v1/contacts/{id}/gdpr-export", write=False, make=_contact),
    Endpoint("POST", "/api/v1/contacts/{id}/erase", write=True, make=_contact),
    Endpoint("DELETE", "/api/v1/contacts/{id}?permanent=true", write=True, make=_contact),
    Endpoint("POST", "/api/v1/contacts/{id}/activity", write=True, make=_contact,
             body={"kind": "message_received", "data": {"body": "STOP"}}),
    Endpoint("GET", "/api/v1/suppressions", write=False, make=lambda org: _suppression(org) and {}),
    Endpoint("POST", "/api/v1/suppressions/check", write=False, body={"phone": "(919) 555-0123"}),
    Endpoint("POST", "/api/v1/inbound", write=True, body={"from": "+19195550177", "body": "STOP"}),
)

register_admin(
    AdminModel("contacts", "trashedcontact", _trashed, action="restore_contacts"),
    AdminModel("contacts", "trashedcontact", _trashed, action="purge_contacts"),
    AdminModel("contacts", "contact", lambda org: make_contact(org), action="erase_contacts"),
    AdminModel("contacts", "suppression", _suppression),
    AdminModel("contacts", "consentrecord", _ledger_row),
    AdminModel("contacts", "keywordsettings", _keyword_settings),
)
