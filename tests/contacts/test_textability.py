"""Textability providers (issue 6): offline inline; Twilio Lookup v2 against a local stub server."""

from __future__ import annotations

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import pytest
from django.core.management import CommandError, call_command

from contacts.models import Contact, ContactEvent
from contacts.textability import (
    LookupResult,
    TextabilityConfigError,
    TwilioProvider,
    contacts_check_textability,
    get_provider,
    twilio_result,
)

from ..factories import make_contact
from ..imports.helpers import drain_queue

pytestmark = pytest.mark.django_db

MOBILE, LANDLINE, VOIP, UNKNOWN = "+14155550101", "+14155550102", "+14155550103", "+14155550104"
FLAKY, BROKEN, NOT_FOUND = "+14155550105", "+14155550106", "+14155550107"


def lookup_body(number, kind, *, valid=True, error_code=None):
    """Twilio's documented Lookup v2 answer with line_type_intelligence."""
    return {
        "calling_country_code": "1", "country_code": "US", "phone_number": number, "national_format": "(415) 555-0101",
        "valid": valid, "validation_errors": [] if valid else ["NOT_A_NUMBER"], "caller_name": None,
        "sim_swap": None, "call_forwarding": None, "line_status": None,
        "line_type_intelligence": {"error_code": error_code, "mobile_country_code": "310",
                                   "mobile_network_code": "456", "carrier_name": "Carrier", "type": kind},
        "identity_match": None, "reassigned_number": None, "sms_pumping_risk": None, "phone_number_quality_score": None,
        "pre_fill": None, "url": f"https://lookups.twilio.com/v2/PhoneNumbers/{number}",
    }


class StubTwilio:
    """A local HTTP server speaking Lookup v2; records every request."""

    def __init__(self):
        self.requests = []
        self.failures = {FLAKY: 2}  # 503 twice, then an answer
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urlsplit(self.path)
                number = unquote(url.path.rsplit("/", 1)[-1])
                stub.requests.append({"number": number, "query": url.query,
                                      "auth": self.headers.get("Authorization", "")})
                status, body = stub.answer(number, self.headers.get("Authorization", ""))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, number, auth):
        expected = "Basic " + base64.b64encode(b"ACtest:secret").decode()
        if auth != expected:
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        if self.failures.get(number, 0) > 0:
            self.failures[number] -= 1
            return 503, {"code": 20500, "message": "Service unavailable", "status": 503}
        if number == BROKEN:
            return 500, {"code": 20500, "message": "Internal error", "status": 500}
        if number == NOT_FOUND:
            return 404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
        kind = {MOBILE: "mobile", LANDLINE: "landline", VOIP: "nonFixedVoip", UNKNOWN: "unknown"}.get(number, "mobile")
        return 200, lookup_body(number, kind)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def twilio(settings, monkeypatch):
    stub = StubTwilio()
    settings.TEXTABILITY_PROVIDER = "twilio"
    settings.TWILIO_LOOKUP_BASE_URL = stub.url
    settings.TEXTABILITY_RETRY_BACKOFF = 0.01
    settings.TEXTABILITY_RETRIES = 3
    settings.TEXTABILITY_RATE_PER_SECOND = 1000
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "ACtest")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "secret")
    yield stub
    stub.close()


# --- offline ----------------------------------------------------------------------------------
def test_the_offline_provider_decides_inline_when_a_contact_is_created(acme, api):
    response = api.post("/api/v1/contacts", {"phone": "+447911123456"}, format="json")  # a UK mobile range
    contact = Contact.objects.get(pk=response.json()["id"])
    assert (contact.is_textable, contact.textable_checked_at is not None) == (True, True)
    landline = make_contact(acme, phone="+442079460958")
    assert landline.is_textable is False
    nanp = make_contact(acme, phone="+19195551234")  # fixed line or mobile: honest about not knowing
    assert nanp.is_textable is None and nanp.textable_checked_at is not None


def test_the_default_provider_is_offline(settings):
    del settings.TEXTABILITY_PROVIDER
    assert get_provider().name == "offline"
    with pytest.raises(TextabilityConfigError, match="Unknown TEXTABILITY_PROVIDER 'carrier-pigeon'"):
        get_provider("carrier-pigeon")


# --- Twilio: the answer format --------------------------------------------------------------------
@pytest.mark.parametrize("kind,textable", [
    ("mobile", True), ("landline", False), ("fixedVoip", False), ("nonFixedVoip", False), ("tollFree", False),
    ("premium", False), ("sharedCost", False), ("uan", False), ("voicemail", False), ("pager", False),
    ("personal", None), ("unknown", None), (None, None),
])
def test_twilio_line_types_map_to_textability(kind, textable):
    assert twilio_result(lookup_body(MOBILE, kind)).textable is textable


def test_a_twilio_line_type_error_or_invalid_number_is_reported():
    assert twilio_result(lookup_body(MOBILE, None, error_code=60601)) == LookupResult(
        None, error="line type intelligence error 60601")
    assert twilio_result(lookup_body(MOBILE, "mobile", valid=False)).textable is False


# --- Twilio: against the stub server ----------------------------------------------------------------
def test_twilio_lookups_use_basic_auth_and_the_documented_url(twilio):
    assert TwilioProvider().lookup(LANDLINE) == LookupResult(False, line_type="landline", carrier="Carrier")
    request = twilio.requests[-1]
    assert request["number"] == LANDLINE
    assert request["query"] == "Fields=line_type_intelligence"
    assert request["auth"] == "Basic " + base64.b64encode(b"ACtest:secret").decode()


def test_twilio_errors_are_retried_with_backoff_then_give_up_as_unknown(twilio):
    assert TwilioProvider().lookup(FLAKY) == LookupResult(True, line_type="mobile", carrier="Carrier")
    assert [r["number"] for r in twilio.requests].count(FLAKY) == 3
    result = TwilioProvider().lookup(BROKEN)
    assert result.textable is None and result.error.startswith("gave up after 4 attempts: HTTP 500: Internal error")
    assert [r["number"] for r in twilio.requests].count(BROKEN) == 4
    not_found = TwilioProvider().lookup(NOT_FOUND)  # a 404 is not retried
    assert not_found.textable is None and "HTTP 404" in not_found.error
    assert [r["number"] for r in twilio.requests].count(NOT_FOUND) == 1


def test_twilio_refused_credentials_stop_the_lookups(twilio, monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "wrong")
    with pytest.raises(TextabilityConfigError, match=r"Twilio refused the credentials \(HTTP 401: Authenticate\)"):
        TwilioProvider().lookup(MOBILE)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN")
    with pytest.raises(TextabilityConfigError, match="needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"):
        TwilioProvider().lookup(MOBILE)


def test_a_network_provider_never_runs_inside_the_request_but_in_a_job_after_commit(
        twilio, acme, api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api.post("/api/v1/contacts", {"phone": MOBILE}, format="json")
    assert response.status_code == 201
    assert response.json()["is_textable"] is None and response.json()["textable_checked_at"] is None
    assert twilio.requests == []  # nothing looked up while answering
    for callback in callbacks:
        callback()
    drain_queue()
    contact = Contact.objects.get(pk=response.json()["id"])
    assert contact.is_textable is True and contact.textable_checked_at is not None
    event = ContactEvent.objects.get(contact=contact, kind="textability_checked")
    assert event.data == {"phone": MOBILE, "is_textable": True, "provider": "twilio", "line_type": "mobile"}


def test_a_changed_phone_resets_textability_until_the_lookup_answers(
        twilio, acme, api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        contact_id = api.post("/api/v1/contacts", {"phone": MOBILE}, format="json").json()["id"]
    drain_queue()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        api.patch(f"/api/v1/contacts/{contact_id}", {"phone": LANDLINE}, format="json")
    contact = Contact.objects.get(pk=contact_id)
    assert (contact.is_textable, contact.textable_checked_at) == (None, None)
    for callback in callbacks:
        callback()
    drain_queue()
    contact.refresh_from_db()
    assert contact.is_textable is False


def test_a_lookup_of_a_phone_changed_meanwhile_is_not_recorded(twilio, acme, settings):
    settings.TEXTABILITY_PROVIDER = "offline"
    contact = make_contact(acme, phone=MOBILE)
    stale = Contact.objects.get(pk=contact.pk)
    Contact.objects.filter(pk=contact.pk).update(phone=LANDLINE)
    counters = contacts_check_textability(contacts=[stale], provider=TwilioProvider())
    assert counters["skipped"] == 1 and counters["checked"] == 0
    assert not ContactEvent.objects.filter(contact=contact, kind="textability_checked").exists()


# --- check_textability ------------------------------------------------------------------------------
def test_check_textability_rechecks_unknown_contacts_and_records_an_event_each(acme, globex, settings):
    known = make_contact(acme, phone="+447911123456")
    unknown = make_contact(acme, phone="+447911123457")
    Contact.objects.filter(pk=unknown.pk).update(is_textable=None, textable_checked_at=None)
    make_contact(globex, phone="+447911123458")
    out = io.StringIO()
    call_command("check_textability", "--org", "acme", "--only-unknown", stdout=out, stderr=io.StringIO())
    assert "checked 1, textable 1" in out.getvalue()
    unknown.refresh_from_db()
    assert unknown.is_textable is True and unknown.textable_checked_at is not None
    assert list(ContactEvent.objects.filter(kind="textability_checked").values_list("contact_id", flat=True)) == [
        unknown.pk]
    assert known.pk != unknown.pk


def test_check_textability_with_a_paid_provider_refuses_above_the_limit_without_a_terminal(
        twilio, acme, settings, monkeypatch):
    settings.TEXTABILITY_PROVIDER = "offline"
    for n in range(3):
        make_contact(acme, phone=f"+1415555020{n}")
    settings.TEXTABILITY_PROVIDER = "twilio"
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a TTY
    with pytest.raises(CommandError, match="Look up 3 numbers with twilio.*Refusing without a terminal"):
        call_command("check_textability", "--org", "acme", "--limit", "2", stdout=io.StringIO())
    assert twilio.requests == []
    out = io.StringIO()
    call_command("check_textability", "--org", "acme", "--limit", "2", "--yes", stdout=out, stderr=io.StringIO())
    assert "checked 3, textable 3" in out.getvalue()
    assert len(twilio.requests) == 3
    assert set(Contact.objects.for_org(acme).values_list("is_textable", flat=True)) == {True}


def test_check_textability_within_the_limit_needs_no_confirmation(twilio, acme, settings):
    settings.TEXTABILITY_PROVIDER = "offline"
    contact = make_contact(acme, phone=VOIP)
    settings.TEXTABILITY_PROVIDER = "twilio"
    out = io.StringIO()
    call_command("check_textability", "--org", "acme", stdout=out, stderr=io.StringIO())
    contact.refresh_from_db()
    assert contact.is_textable is False
    assert "not_textable 1" in out.getvalue()


def test_check_textability_names_a_missing_organization():
    with pytest.raises(CommandError, match="No organization with the slug 'nope'"):
        call_command("check_textability", "--org", "nope")


def test_the_contacts_filter_finds_unknown_textability(acme, api):
    make_contact(acme, phone="+19195551234")  # North America: unknown offline
    make_contact(acme, phone="+447911123456")
    response = api.get("/api/v1/contacts", {"is_textable": "unknown"})
    assert [c["phone"] for c in response.json()["results"]] == ["+19195551234"]
