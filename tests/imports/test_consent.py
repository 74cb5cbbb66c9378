"""Consent columns of the common exports become opt-outs (global or per channel), never opt-ins."""

from __future__ import annotations

import pytest

from contacts.models import ChannelPreference, Contact, ContactEvent
from imports.mapping import build_plan, detect_mapping
from imports.models import ImportRowError
from imports.normalize_row import normalize_record
from imports.readers.base import SourceRow

from ..factories import make_contact
from .helpers import counters, csv_bytes, run_import_bytes, xlsx_bytes

MAILCHIMP_UNSUBSCRIBED = """Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME,UNSUB_TIME,UNSUB_CAMPAIGN_TITLE,UNSUB_REASON
ann@example.com,Ann,Lee,2,2021-03-01 10:00:00,2024-05-02 09:13:11,Spring sale,
bob@example.com,Bob,Ray,1,2021-03-01 10:00:00,2024-06-01 11:00:00,Spring sale,"No longer interested"
"""
SALESFORCE_REPORT = [
    ["First Name", "Last Name", "Email", "Mobile", "Email Opt Out", "Do Not Call", "SMS Opt Out"],
    ["Ann", "Lee", "ann@example.com", "9195550101", 1, 0, 0],
    ["Bob", "Ray", "bob@example.com", "9195550102", 0, 1, 1],
    ["Cat", "Fox", "cat@example.com", "9195550103", 0, 0, 0],
]
KLAVIYO = """Email,Phone Number,First Name,Email Marketing Consent,SMS Marketing Consent
ann@example.com,+19195550101,Ann,UNSUBSCRIBED,SUBSCRIBED
bob@example.com,+19195550102,Bob,SUBSCRIBED,unsubscribed
cat@example.com,+19195550103,Cat,NEVER_SUBSCRIBED,maybe later
"""


def channel_opt_outs(org):
    return sorted((p.contact.email, p.channel) for p in ChannelPreference.objects.filter(
        contact__organization=org, opted_in=False).select_related("contact"))


def opt_out_events(org):
    return sorted((e.contact.email, e.data["channel"]) for e in ContactEvent.objects.filter(
        organization=org, kind="opted_out").select_related("contact"))


@pytest.mark.parametrize(("header", "target"), [
    ("Email Opt Out", "opted_out.email"), ("HasOptedOutOfEmail", "opted_out.email"),
    ("Do Not Call", "opted_out.voice"), ("DoNotCall", "opted_out.voice"), ("SMS Opt Out", "opted_out.sms"),
    ("Unsubscribed from all email", "opted_out.email"),
    ("Opted out of email: Marketing Information", "opted_out.email"),
    ("Email Marketing Consent", "subscription_status.email"), ("SMS Marketing Consent", "subscription_status.sms"),
    ("Email Status", "subscription_status.email"), ("Subscription Status", "subscription_status.email"),
    ("Email Consent", "subscription_status.email"),
    ("sms_blacklisted", "opted_out.sms"), ("email_blacklisted", "opted_out.email"),
    ("Opted Out", "opted_out"), ("unsubscribed", "opted_out"), ("Do Not Contact", "opted_out"),
    ("WhatsApp opt out", "opted_out.whatsapp"), ("Email unsubscribed", "opted_out.email"),
    ("Do not text", "opted_out.sms"), ("Do not email", "opted_out.email"),
    ("UNSUB_TIME", "opted_out_if_set.email"), ("UNSUB_REASON", "opted_out_if_set.email"),
    ("CLEAN_TIME", "opted_out_if_set.email"),
])
def test_each_known_consent_header_maps_to_its_opt_out(header, target):
    assert detect_mapping(["Email", header]) == {0: "email", 1: target}


def test_hubspots_marketing_contact_status_is_not_consent():
    assert detect_mapping(["Email", "Marketing contact status", "Status"]) == {0: "email"}


def test_the_preview_says_what_a_consent_column_means():
    plan = build_plan(["Email", "Email Opt Out", "UNSUB_TIME"])
    described = {c["header"]: c.get("consent") for c in plan.describe()}
    assert described["Email"] is None
    assert described["Email Opt Out"].startswith("opted out of email when yes (1, true")
    assert described["UNSUB_TIME"] == "opted out of email when the cell is not empty"


def test_on_a_consent_or_status_column_yes_means_consented_and_never_opts_out():
    plan = build_plan(["Email", "Email Marketing Consent", "SMS Marketing Consent"])
    for cells, expected in ((["a@example.com", "yes", "no"], None), (["a@example.com", "TRUE", "unsubscribed"], ["sms"]),
                            (["a@example.com", "SUBSCRIBED", "NEVER_SUBSCRIBED"], None)):
        result = normalize_record(plan.apply(SourceRow(2, cells)), region="US", definitions={})
        assert result.data.get("opt_out_channels") == expected and not result.issues


def test_a_consent_value_neither_yes_nor_no_is_a_warning_naming_the_cell():
    plan = build_plan(["Email", "SMS Opt Out"])
    result = normalize_record(plan.apply(SourceRow(7, ["a@example.com", "perhaps"])), region="US", definitions={})
    assert not result.failed and "opt_out_channels" not in result.data
    [issue] = result.issues
    assert (issue.column, issue.value, issue.severity, issue.code) == ("SMS Opt Out", "perhaps", "warning", "consent")
    assert "neither yes nor no" in issue.message


@pytest.mark.django_db
def test_a_mailchimp_unsubscribed_export_opts_everyone_out_of_email(acme):
    job = run_import_bytes(acme, csv_bytes(MAILCHIMP_UNSUBSCRIBED), name="unsubscribed_members.csv")
    assert job.status == "succeeded", job.error
    assert counters(job)["created"] == 2
    assert channel_opt_outs(acme) == [("ann@example.com", "email"), ("bob@example.com", "email")]
    assert not Contact.objects.for_org(acme).filter(opted_out=True).exists()  # email only, not global
    assert opt_out_events(acme) == [("ann@example.com", "email"), ("bob@example.com", "email")]
    event = ContactEvent.objects.filter(kind="opted_out").first()
    assert event.data == {"channel": "email", "source": "import", "import_id": job.pk}
    assert set(ChannelPreference.objects.values_list("source", flat=True)) == {"import"}
    again = run_import_bytes(acme, csv_bytes(MAILCHIMP_UNSUBSCRIBED), name="unsubscribed_members.csv")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert ContactEvent.objects.filter(kind="opted_out").count() == 2


@pytest.mark.django_db
def test_salesforce_flags_opt_out_of_email_voice_and_sms_and_existing_contacts_follow(acme):
    bob = make_contact(acme, phone="+19195550102", email="bob@example.com")
    ChannelPreference.objects.create(contact=bob, channel="voice", opted_in=True, changed_at=bob.created_at,
                                     source="api")
    data = xlsx_bytes(SALESFORCE_REPORT)
    job = run_import_bytes(acme, data, name="report.xlsx")
    assert job.status == "succeeded", job.error
    assert (job.created, job.updated, job.unchanged) == (2, 1, 0)
    assert channel_opt_outs(acme) == [("ann@example.com", "email"), ("bob@example.com", "sms"),
                                      ("bob@example.com", "voice")]
    assert opt_out_events(acme) == [("ann@example.com", "email"), ("bob@example.com", "sms"),
                                    ("bob@example.com", "voice")]
    assert ChannelPreference.objects.get(contact=bob, channel="voice").source == "import"
    again = run_import_bytes(acme, data, name="report.xlsx")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert ContactEvent.objects.filter(kind="opted_out").count() == 3


@pytest.mark.django_db
def test_klaviyo_consent_opts_out_and_a_subscribed_value_never_opts_back_in(acme):
    ann = make_contact(acme, phone="+19195550101", email="ann@example.com")
    ChannelPreference.objects.create(contact=ann, channel="sms", opted_in=False, changed_at=ann.created_at,
                                     source="keyword")
    job = run_import_bytes(acme, csv_bytes(KLAVIYO), name="klaviyo.csv")
    assert job.status == "succeeded", job.error
    assert channel_opt_outs(acme) == [("ann@example.com", "email"), ("ann@example.com", "sms"),
                                      ("bob@example.com", "sms")]
    assert ChannelPreference.objects.get(contact=ann, channel="sms").source == "keyword"  # untouched
    warning = ImportRowError.objects.get(job=job, code="consent")
    assert (warning.line, warning.column, warning.value, warning.severity) == (
        4, "SMS Marketing Consent", "maybe later", "warning")
    assert job.failed == 0
    again = run_import_bytes(acme, csv_bytes(KLAVIYO), name="klaviyo.csv")
    assert (again.created, again.updated) == (0, 0)
    assert opt_out_events(acme) == [("ann@example.com", "email"), ("bob@example.com", "sms")]


@pytest.mark.django_db
def test_rows_folded_together_union_their_channel_opt_outs(acme):
    text = "email,Email Opt Out,SMS Opt Out,Do Not Call\na@example.com,yes,no,no\na@example.com,no,yes,no\n"
    job = run_import_bytes(acme, csv_bytes(text))
    assert (job.created, job.merged) == (1, 1)
    assert channel_opt_outs(acme) == [("a@example.com", "email"), ("a@example.com", "sms")]


@pytest.mark.django_db
def test_a_global_opt_out_column_and_an_override_to_a_channel(acme):
    text = "email,Do Not Contact,Newsletter\na@example.com,TRUE,\nb@example.com,false,yes\n"
    job = run_import_bytes(acme, csv_bytes(text), mapping={"Newsletter": "opted_out.email"})
    assert job.status == "succeeded", job.error
    assert list(Contact.objects.for_org(acme).filter(opted_out=True).values_list("email", flat=True)) == [
        "a@example.com"]
    assert channel_opt_outs(acme) == [("b@example.com", "email")]
    assert {c["header"]: c["target"] for c in job.preview["mapping"]}["Newsletter"] == "opted_out.email"


@pytest.mark.django_db
def test_hubspot_brevo_and_generic_columns_through_the_import(acme):
    text = ("Email,Unsubscribed from all email,sms_blacklisted,Do not text,Opted out of email: Newsletter,"
            "Marketing contact status\n"
            "ann@example.com,true,false,,,Marketing contact\n"
            "bob@example.com,false,true,,No,Non-marketing contact\n"
            "cat@example.com,,,Yes,Yes,\n")
    job = run_import_bytes(acme, csv_bytes(text), name="hubspot.csv")
    assert job.status == "succeeded", job.error
    assert channel_opt_outs(acme) == [("ann@example.com", "email"), ("bob@example.com", "sms"),
                                      ("cat@example.com", "email"), ("cat@example.com", "sms")]
    assert not ImportRowError.objects.filter(job=job).exists()  # `Marketing contact status` is not read
    again = run_import_bytes(acme, csv_bytes(text), name="hubspot.csv")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert len(opt_out_events(acme)) == 4
