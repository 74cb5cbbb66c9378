"""Issue 11: the admin's "Merge selected contacts" action and its confirmation page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from contacts.models import Contact

from ..factories import make_contact

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:contacts_contact_changelist")


def test_the_merge_page_shows_the_result_and_writes_nothing(client, acme, alice):
    old = make_contact(acme, phone="+19195550501", first_name="Ann", last_name="")
    new = make_contact(acme, phone="+19195550502", last_name="Lee", tags=["vip"])
    client.force_login(alice)
    response = client.post(CHANGELIST, {"action": "merge_contacts", "_selected_action": [old.pk, new.pk]})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Yes, merge them" in html and "Lee" in html and "vip" in html and "+19195550502" in html
    assert response.context["survivor"].pk == old.pk  # the oldest stays by default
    assert Contact.objects.filter(pk=new.pk).exists()
    old.refresh_from_db()
    assert old.last_name == ""


def test_confirming_merges_into_the_chosen_contact(client, acme, alice):
    a = make_contact(acme, phone="+19195550503", first_name="Ann")
    b = make_contact(acme, phone="+19195550504", first_name="Bea", opted_out=True)
    client.force_login(alice)
    response = client.post(CHANGELIST, {"action": "merge_contacts", "_selected_action": [a.pk, b.pk],
                                        "survivor": str(b.pk), "post": "yes"}, follow=True)
    assert "Merged 1 contact" in response.content.decode()
    assert not Contact.objects.filter(pk=a.pk).exists()
    b.refresh_from_db()
    assert b.first_name == "Bea" and b.opted_out is True and b.secondary_phones == ["+19195550503"]


def test_one_contact_is_not_enough_and_another_orgs_contact_is_never_merged(client, acme, globex, alice):
    mine = make_contact(acme, phone="+19195550505")
    theirs = make_contact(globex, phone="+19195550506")
    client.force_login(alice)
    response = client.post(CHANGELIST, {"action": "merge_contacts", "_selected_action": [mine.pk, theirs.pk],
                                        "post": "yes"}, follow=True)
    assert "at least two" in response.content.decode()
    assert Contact.objects.filter(pk=theirs.pk).exists() and Contact.objects.filter(pk=mine.pk).exists()
