"""Issue 13 item 10: an admin action posted with an id that is no primary key is an error
message, never a 500, and changes nothing. Every admin model with an action in the matrix."""

from __future__ import annotations

import pytest
from django.urls import reverse

from . import api_endpoints  # noqa: F401  (admin models register with the endpoints)
from .admin_matrix import ADMIN_MODELS

pytestmark = pytest.mark.django_db
WITH_ACTIONS = [pytest.param(m, id=m.id) for m in ADMIN_MODELS if m.action]


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "²", "1" * 40, "12345678-1234-1234-1234-12345678901z"])
@pytest.mark.parametrize("model", WITH_ACTIONS)
def test_an_action_with_a_bad_id_is_an_error_message(model, client, acme, alice, bad_id):
    mine = model.make(acme)
    fields = [f.attname for f in type(mine)._meta.concrete_fields]
    before = type(mine).objects.filter(pk=mine.pk).values(*fields).first()
    client.force_login(alice)
    url = reverse(f"admin:{model.app_label}_{model.model_name}_changelist")
    response = client.post(url, {"action": model.action, "_selected_action": [str(mine.pk), bad_id], "post": "yes"},
                           follow=True)
    assert response.status_code == 200
    assert any("is not the id of" in str(m) for m in response.context["messages"])
    assert type(mine).objects.filter(pk=mine.pk).values(*fields).first() == before


@pytest.mark.parametrize("text", ["score = Infinity", "score = NaN", "score = 1e999999", "x = 1e999",
                                  "x = " + "9" * 5000, "score = " + "9" * 400])
def test_the_admin_contact_form_refuses_non_finite_and_huge_numbers(client, alice, acme, text):
    from contacts.models import CustomField

    from .contacts.test_admin import change_url, form_data
    from .factories import make_contact

    CustomField.objects.create(organization=acme, key="score", type="number")
    contact = make_contact(acme, phone="+19195550101")
    client.force_login(alice)
    data = form_data(client.get(change_url(contact)))
    data["custom_fields"] = text
    response = client.post(change_url(contact), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["custom_fields"]
    contact.refresh_from_db()
    assert contact.custom_fields == {}


def test_the_admin_contact_form_refuses_a_birthday_of_5000_digits(client, alice, acme):
    from .contacts.test_admin import change_url, form_data
    from .factories import make_contact

    contact = make_contact(acme, phone="+19195550101")
    client.force_login(alice)
    data = form_data(client.get(change_url(contact)))
    data["birthday"] = "9" * 5000
    response = client.post(change_url(contact), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["birthday"]
