"""The contact pages in a real browser (Chromium + Playwright): the list at 1366 px, the
duplicate-add refusal and its explicit merge, typed custom-field inputs."""

from __future__ import annotations

import pytest

from contacts.models import Contact, ContactEvent, CustomField

from ..browser import BROWSER_MARKS, login, screenshot
from ..factories import make_contact

pytestmark = BROWSER_MARKS


@pytest.fixture
def book(acme):
    people = [
        make_contact(acme, phone="+19195550102", email="bob.jones@example.com", first_name="Bob", last_name="Jones",
                     state="NC", tags=["vip", "newsletter"]),
        make_contact(acme, phone="+19192600002", email="maria.garcia@example.com", first_name="María",
                     last_name="García", state="NC", tags=["customer"]),
        make_contact(acme, phone="+442079460958", email="zoe@example.co.uk", first_name="Zoë", last_name="Smith",
                     tags=["partner", "vip", "newsletter", "events"]),
        make_contact(acme, email="no.name@example.com", first_name="", last_name=""),
    ]
    for n in range(12):
        people.append(make_contact(acme, phone=f"+1919555{1000 + n}", email=f"person{n}@example.com",
                                   first_name=f"Person{n}", last_name="Testerman", state="SC",
                                   company="Acme Carolina Widgets and Sons", tags=["lead"] if n % 3 else []))
    # The named cast on top of the list (most recently updated), the Person rows below it.
    from datetime import timedelta

    from django.utils import timezone

    for age, contact in enumerate(people):
        Contact.objects.filter(pk=contact.pk).update(updated_at=timezone.now() - timedelta(hours=3 * age))
    Contact.objects.filter(pk__in=[p.pk for p in people[::2]]).update(is_textable=True)
    Contact.objects.filter(pk=people[2].pk).update(opted_out=True, opted_out_at=timezone.now())
    return people


def test_the_contact_list_fits_1366_pixels(page, live_server, alice, book, tmp_path):
    login(page, live_server, "alice", "/admin/contacts/contact/")
    page.wait_for_selector("#result_list")
    assert "(919) 555-0102" in page.inner_text("#result_list")
    assert "+44 20 7946 0958" in page.inner_text("#result_list")
    assert "(no name)" in page.inner_text("#result_list")
    # Every column, the last included, ends inside the window: no sideways scrolling.
    right = page.evaluate("Math.max(...[...document.querySelectorAll('#result_list thead th')]"
                          ".map(th => th.getBoundingClientRect().right))")
    assert right <= 1366, right
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    assert page.locator("#result_list thead th.sortable.column-name").count() == 1
    assert page.locator("#result_list thead th.sortable.column-email_display").count() == 1
    screenshot(page, tmp_path, "contact-list.png")

    page.fill("#searchbar", "zzzz nobody")
    page.press("#searchbar", "Enter")
    page.wait_for_selector("#empty-state")
    assert "No contact matches" in page.inner_text("#empty-state")


def test_adding_a_known_phone_is_refused_and_merges_only_on_the_button(page, live_server, alice, book):
    bob = book[0]
    login(page, live_server, "alice", "/admin/contacts/contact/add/")
    page.fill("#id_phone", "919 555 0102")
    page.fill("#id_first_name", "Robert")
    page.click("input[name=_save]")
    page.wait_for_selector(".errorlist")
    error = page.locator(".errorlist").filter(has_text="belongs to an existing contact")
    assert error.count() == 1
    assert "Bob Jones" in error.inner_text()
    assert error.locator("a").get_attribute("href").endswith(f"/admin/contacts/contact/{bob.pk}/change/")
    bob.refresh_from_db()
    assert bob.first_name == "Bob"
    page.click("#merge-into")
    page.wait_for_selector(".messagelist")
    assert "merged into" in page.inner_text(".messagelist")
    assert page.url.endswith(f"/admin/contacts/contact/{bob.pk}/change/")
    bob.refresh_from_db()
    assert bob.first_name == "Robert" and Contact.objects.filter(phone="+19195550102").count() == 1
    assert ContactEvent.objects.filter(contact=bob, kind="merged").count() == 1


def test_custom_fields_get_typed_inputs(page, live_server, alice, acme, book, tmp_path):
    CustomField.objects.create(organization=acme, key="plan", label="Plan", type="choice", choices=["gold", "silver"])
    CustomField.objects.create(organization=acme, key="renews_on", label="Renews on", type="date")
    CustomField.objects.create(organization=acme, key="seats", label="Seats", type="number")
    CustomField.objects.create(organization=acme, key="vip", label="VIP", type="boolean")
    bob = book[0]
    login(page, live_server, "alice", f"/admin/contacts/contact/{bob.pk}/change/")
    assert page.get_attribute("#id_cf_renews_on", "type") == "date"
    assert page.get_attribute("#id_cf_seats", "type") == "number"
    assert page.get_attribute("#id_cf_vip", "type") == "checkbox"
    assert page.evaluate("document.getElementById('id_cf_plan').tagName") == "SELECT"
    assert page.evaluate("document.getElementById('id_country').tagName") == "SELECT"
    assert page.evaluate("document.getElementById('id_timezone').tagName") == "SELECT"
    assert page.input_value("#id_phone") == "(919) 555-0102"
    assert page.locator(".submit-row").count() == 2  # save buttons on top too
    page.select_option("#id_cf_plan", "gold")
    page.fill("#id_cf_renews_on", "2027-01-31")
    page.fill("#id_cf_seats", "12")
    page.check("#id_cf_vip")
    page.check("#id_pref_sms_1")  # Unsubscribed
    screenshot(page, tmp_path, "contact-page.png", full_page=True)
    page.locator("input[name=_continue]").first.click()
    page.wait_for_selector(".messagelist")
    bob.refresh_from_db()
    assert bob.custom_fields == {"plan": "gold", "renews_on": "2027-01-31", "seats": 12, "vip": True}
    assert bob.preferences.get().opted_in is False
    assert "Unsubscribed" in page.inner_text(".field-pref_sms")


def test_the_index_shows_the_organization_at_a_glance(page, live_server, alice, acme, book, tmp_path):
    from contacts.services import Actor, contact_opt_out

    for contact in book[4:7]:
        contact_opt_out(contact=contact, actor=Actor(label="test", source="keyword"))
    login(page, live_server, "alice", "/admin/")
    page.wait_for_selector("#crm-glance")
    assert page.inner_text("#crm-contacts") == "16"
    assert page.locator("#opt-out-chart rect").count() == 12
    assert "View site" not in page.inner_text("#header")
    screenshot(page, tmp_path, "admin-index.png")
