"""A staff user of one organization never sees, opens, changes or acts on another's rows."""

from __future__ import annotations

import pytest
from django.urls import reverse

from . import api_endpoints  # noqa: F401  (admin models register with the endpoints)
from .admin_matrix import ADMIN_MODELS

pytestmark = pytest.mark.django_db
MODELS = [pytest.param(m, id=m.id) for m in ADMIN_MODELS]
WITH_ACTIONS = [pytest.param(m, id=m.id) for m in ADMIN_MODELS if m.action]
PAGES = [pytest.param(m, page, id=f"{m.id}:{page}") for m in ADMIN_MODELS for page in m.pages]


@pytest.mark.parametrize("model", MODELS)
def test_the_changelist_shows_only_the_users_organization(model, client, acme, globex, alice):
    mine, theirs = model.make(acme), model.make(globex)
    client.force_login(alice)
    response = client.get(reverse(f"admin:{model.app_label}_{model.model_name}_changelist"))
    assert response.status_code == 200
    pks = {obj.pk for obj in response.context["cl"].result_list}
    assert mine.pk in pks
    assert theirs.pk not in pks


@pytest.mark.parametrize("model", MODELS)
def test_mallory_cannot_open_or_change_acmes_object_by_url(model, client, acme, mallory):
    theirs = model.make(acme)
    client.force_login(mallory)
    url = reverse(f"admin:{model.app_label}_{model.model_name}_change", args=[theirs.pk])
    response = client.get(url)
    # Django answers a missing object with a redirect to the admin index and a message.
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    response = client.post(url, {"name": "hijacked"})
    assert response.status_code == 302
    before = type(theirs).objects.get(pk=theirs.pk)
    assert getattr(before, "name", None) != "hijacked"
    delete_url = reverse(f"admin:{model.app_label}_{model.model_name}_delete", args=[theirs.pk])
    client.post(delete_url, {"post": "yes"})
    assert type(theirs).objects.filter(pk=theirs.pk).exists()


@pytest.mark.parametrize(("model", "page"), PAGES)
def test_mallory_gets_404_from_every_page_of_acmes_object(model, page, client, acme, mallory):
    theirs = model.make(acme)
    fields = [f.attname for f in type(theirs)._meta.concrete_fields]
    before = type(theirs).objects.filter(pk=theirs.pk).values(*fields).first()
    count = type(theirs).objects.count()
    client.force_login(mallory)
    url = reverse(f"admin:{page}", args=[theirs.pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"_start": "1", "mode": "create_update"}).status_code == 404
    assert type(theirs).objects.filter(pk=theirs.pk).values(*fields).first() == before
    assert type(theirs).objects.count() == count


@pytest.mark.parametrize("model", WITH_ACTIONS)
def test_an_action_never_touches_another_organizations_rows(model, client, acme, globex, alice):
    theirs = model.make(globex)
    fields = [f.attname for f in type(theirs)._meta.concrete_fields]
    before = type(theirs).objects.filter(pk=theirs.pk).values(*fields).first()  # as stored (triggers included)
    client.force_login(alice)
    url = reverse(f"admin:{model.app_label}_{model.model_name}_changelist")
    client.post(url, {"action": model.action, "_selected_action": [theirs.pk], "post": "yes"})
    after = type(theirs).objects.filter(pk=theirs.pk).values(*fields).first()
    assert after == before


def test_a_superuser_sees_every_organization_with_a_filter(client, acme, globex, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    model = ADMIN_MODELS[0]
    mine, theirs = model.make(acme), model.make(globex)
    client.force_login(root)
    response = client.get(reverse(f"admin:{model.app_label}_{model.model_name}_changelist"))
    pks = {obj.pk for obj in response.context["cl"].result_list}
    assert {mine.pk, theirs.pk} <= pks
    assert "organization" in [spec.field_path for spec in response.context["cl"].filter_specs
                              if hasattr(spec, "field_path")]


def test_a_member_cannot_manage_api_keys(client, acme, bob):
    client.force_login(bob)
    response = client.get(reverse("admin:contacts_crm_apikey_changelist"))
    assert response.status_code == 403


def test_an_admin_creates_a_key_and_sees_the_secret_once(client, acme, alice):
    from contacts_crm.models import ApiKey

    client.force_login(alice)
    response = client.post(reverse("admin:contacts_crm_apikey_add"), {"name": "zapier", "scope": "write"},
                           follow=True)
    assert response.status_code == 200
    key = ApiKey.objects.get(name="zapier")
    assert key.organization == acme and key.created_by == alice
    messages = [str(m) for m in response.context["messages"]]
    raw = next(m for m in messages if key.prefix in m).split("<code id='new-api-key'>")[1].split("<")[0]
    from .conftest import client_with_key

    assert client_with_key(raw).get("/api/v1/organization").status_code == 200
    # Shown once: the key page never shows it again.
    page = client.get(reverse("admin:contacts_crm_apikey_change", args=[key.pk])).content.decode()
    assert raw not in page and key.prefix in page


def test_revoking_a_key_in_the_admin_stops_it(client, acme, alice):
    from contacts_crm.models import ApiKey

    from .conftest import client_with_key

    key, raw = ApiKey.generate(organization=acme, name="old", scope="read")
    client.force_login(alice)
    client.post(reverse("admin:contacts_crm_apikey_changelist"),
                {"action": "revoke_keys", "_selected_action": [key.pk]})
    assert client_with_key(raw).get("/api/v1/organization").status_code == 401
