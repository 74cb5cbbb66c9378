"""Issue 11: the tags resource and {"tag_id": n} tags in contact writes."""

from __future__ import annotations

import pytest

from contacts.models import Contact, ContactEvent, Tag

from ..factories import make_contact

pytestmark = pytest.mark.django_db
URL = "/api/v1/tags"


def error(response, status):
    assert response.status_code == status, (response.status_code, response.content[:800])
    return response.json()["error"]


def test_tags_are_listed_paged_with_their_contact_count(api, acme, globex):
    make_contact(acme, tags=["vip", "news"])
    make_contact(acme, tags=["VIP"])
    make_contact(globex, tags=["secret"])
    body = api.get(URL, {"limit": 1, "sort": "name"}).json()
    assert [(t["name"], t["contact_count"]) for t in body["results"]] == [("news", 1)]
    body = api.get(URL, {"cursor": body["next_cursor"], "sort": "name"}).json()
    assert [(t["name"], t["contact_count"]) for t in body["results"]] == [("vip", 2)]
    assert body["next_cursor"] is None


def test_a_tag_is_created_once_case_insensitively(api, acme):
    response = api.post(URL, {"name": "  Gold  "}, format="json")
    assert response.status_code == 201 and response.json()["name"] == "Gold"
    assert response.json()["contact_count"] == 0
    assert "exists" in error(api.post(URL, {"name": "gold"}, format="json"), 400)["message"]
    error(api.post(URL, {"name": ""}, format="json"), 400)
    error(api.post(URL, {"name": "x" * 65}, format="json"), 400)


def test_renaming_a_tag_moves_its_key_and_every_contacts_tag(api, acme):
    contact = make_contact(acme, tags=["vip"])
    tag = Tag.objects.get(organization=acme, key="vip")
    response = api.patch(f"{URL}/{tag.pk}", {"name": "Gold"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "Gold"
    tag.refresh_from_db()
    assert tag.key == "gold"
    assert api.get(f"/api/v1/contacts/{contact.pk}").json()["tags"] == ["Gold"]
    assert [c["id"] for c in api.get("/api/v1/contacts", {"tags": "gold"}).json()["results"]] == [str(contact.pk)]


def test_renaming_onto_another_tags_name_is_a_400(api, acme):
    make_contact(acme, tags=["vip", "gold"])
    tag = Tag.objects.get(organization=acme, key="vip")
    assert "already" in error(api.patch(f"{URL}/{tag.pk}", {"name": "GOLD"}, format="json"), 400)["message"]
    tag.refresh_from_db()
    assert tag.name == "vip"


def test_deleting_a_tag_removes_it_from_every_contact_with_one_event_each(api, acme):
    a, b = make_contact(acme, tags=["vip", "x"]), make_contact(acme, tags=["vip"])
    c = make_contact(acme, tags=["x"])
    tag = Tag.objects.get(organization=acme, key="vip")
    assert api.delete(f"{URL}/{tag.pk}").status_code == 204
    assert not Tag.objects.filter(pk=tag.pk).exists()
    assert [t.name for t in Contact.objects.get(pk=a.pk).tags.all()] == ["x"]
    assert not Contact.objects.get(pk=b.pk).tags.exists()
    removed = ContactEvent.objects.filter(kind=ContactEvent.Kind.TAGS_REMOVED)
    assert sorted(str(e.contact_id) for e in removed) == sorted([str(a.pk), str(b.pk)])
    assert all(e.data == {"tags": ["vip"]} and e.actor_api_key is not None for e in removed)
    assert not ContactEvent.objects.filter(contact=c, kind=ContactEvent.Kind.TAGS_REMOVED).exists()
    assert api.get("/api/v1/contacts", {"tags": "vip"}).json()["results"] == []


def test_mallory_cannot_touch_acmes_tags(globex_write_key, acme):
    from ..conftest import client_with_key

    make_contact(acme, tags=["vip"])
    tag = Tag.objects.get(organization=acme, key="vip")
    mallory = client_with_key(globex_write_key)
    error(mallory.patch(f"{URL}/{tag.pk}", {"name": "x"}, format="json"), 404)
    error(mallory.delete(f"{URL}/{tag.pk}"), 404)
    assert mallory.get(URL).json()["results"] == []
    assert Tag.objects.filter(pk=tag.pk, name="vip").exists()


def test_contact_writes_take_tag_ids_and_names_mixed(api, acme):
    make_contact(acme, tags=["vip"])
    vip = Tag.objects.get(organization=acme, key="vip")
    body = api.post("/api/v1/contacts", {"phone": "+19195550301", "tags": [{"tag_id": vip.pk}, "new"]},
                    format="json").json()
    assert body["tags"] == ["new", "vip"]
    body = api.patch(f"/api/v1/contacts/{body['id']}", {"tags": [{"tag_id": vip.pk}]}, format="json").json()
    assert body["tags"] == ["vip"]
    body = api.post(f"/api/v1/contacts/{body['id']}/tags", {"tags": ["z", {"tag_id": vip.pk}]}, format="json").json()
    assert body["tags"] == ["vip", "z"]
    results = api.post("/api/v1/contacts/bulk", {"contacts": [{"phone": "+19195550302", "tags": [{"tag_id": vip.pk}]}]},
                       format="json").json()["results"]
    assert Contact.objects.get(pk=results[0]["id"]).tags.get().pk == vip.pk


def test_an_unknown_or_foreign_tag_id_is_a_400_naming_the_index(api, acme, globex):
    theirs = make_contact(globex, tags=["secret"]).tags.get()
    err = error(api.post("/api/v1/contacts", {"phone": "+19195550303", "tags": ["ok", {"tag_id": theirs.pk}]},
                         format="json"), 400)
    assert "tags[1]" in err["fields"]
    err = error(api.post("/api/v1/contacts", {"phone": "+19195550303", "tags": [{"tag_id": "1"}, {"id": 1}]},
                         format="json"), 400)
    assert set(err["fields"]) == {"tags[0]", "tags[1]"}
    assert not Contact.objects.filter(phone="+19195550303").exists()
    results = api.post("/api/v1/contacts/bulk", {"contacts": [{"phone": "+19195550304", "tags": [{"tag_id": 0}]}]},
                       format="json").json()["results"]
    assert results[0]["outcome"] == "error" and "tags[0]" in results[0]["error"]["fields"]


CONTACTS = "/api/v1/contacts"


def _listed_counts(api) -> dict[str, int]:
    response = api.get("/api/v1/tags?limit=100")
    assert response.status_code == 200, response.content
    return {t["name"]: t["contact_count"] for t in response.json()["results"]}


def _true_counts(org) -> dict[str, int]:
    """What contact_count must say: live contacts linked to each tag, counted from the links."""
    from contacts.models import ContactTag

    return {tag.name: ContactTag.objects.filter(tag=tag, contact__deleted_at__isnull=True).count()
            for tag in Tag.objects.for_org(org)}


def test_a_tags_contact_count_stays_exact_whichever_path_writes_the_links(api, acme):
    """contact_count comes from TagLinkCount (kept by triggers on the links) less the trash's
    links: every writer of links moves it — the API, the write engine's bulk path (COPY on
    PostgreSQL), removal, merge, the trash and its restore, purge, tag deletion."""
    from contacts.merging import contacts_merge
    from contacts.services import Actor
    from contacts.trash import contact_purge, contact_restore, contact_trash

    actor = Actor(label="test", source="admin")
    ann = make_contact(acme, tags=["vip", "news"])
    bob = make_contact(acme, tags=["vip"])
    assert _listed_counts(api) == _true_counts(acme) == {"vip": 2, "news": 1}
    bulk = api.post(f"{CONTACTS}/bulk", {"contacts": [{"phone": f"+1919555{7000 + i}", "tags": ["vip", "bulk"]}
                                                 for i in range(5)]}, format="json")
    assert bulk.status_code == 200, bulk.content
    assert _listed_counts(api) == _true_counts(acme) == {"vip": 7, "news": 1, "bulk": 5}
    assert api.delete(f"{CONTACTS}/{bob.pk}/tags/vip").status_code == 200
    assert api.patch(f"{CONTACTS}/{ann.pk}", {"tags": ["news", "bulk"]}, format="json").status_code == 200
    assert _listed_counts(api) == _true_counts(acme) == {"vip": 5, "news": 1, "bulk": 6}
    contact_trash(contact=ann, actor=actor)
    assert _listed_counts(api) == _true_counts(acme) == {"vip": 5, "news": 0, "bulk": 5}
    contact_restore(contact=Contact.objects.get(pk=ann.pk), actor=actor)
    assert _listed_counts(api) == {"vip": 5, "news": 1, "bulk": 6}
    others = list(Contact.objects.for_org(acme).filter(phone__in=["+19195557000", "+19195557001"]))
    contacts_merge(survivor=Contact.objects.get(pk=bob.pk), others=others, actor=actor)
    assert _listed_counts(api) == _true_counts(acme) == {"vip": 4, "news": 1, "bulk": 5}
    contact_trash(contact=ann, actor=actor)
    contact_purge(contact=Contact.objects.get(pk=ann.pk), actor=actor)
    assert _listed_counts(api) == _true_counts(acme) == {"vip": 4, "news": 0, "bulk": 4}
    assert api.delete(f"/api/v1/tags/{Tag.objects.get(organization=acme, key='bulk').pk}").status_code == 204
    assert _listed_counts(api) == _true_counts(acme) == {"vip": 4, "news": 0}
    vip = Tag.objects.get(organization=acme, key="vip")
    assert api.get(f"/api/v1/tags/{vip.pk}").json()["contact_count"] == 4


def test_a_tags_count_rows_are_folded_into_one_when_they_pile_up(api, acme):
    from contacts.counting import FOLD_TAG_COUNTS_AT
    from contacts.models import TagLinkCount

    contacts = [make_contact(acme) for _ in range(FOLD_TAG_COUNTS_AT + 2)]
    for contact in contacts:  # one statement each: one count row each
        assert api.post(f"{CONTACTS}/{contact.pk}/tags", {"tags": ["vip"]}, format="json").status_code == 200
    vip = Tag.objects.get(organization=acme, key="vip")
    assert TagLinkCount.objects.filter(tag_id=vip.pk).count() > FOLD_TAG_COUNTS_AT
    assert _listed_counts(api) == {"vip": FOLD_TAG_COUNTS_AT + 2}
    assert list(TagLinkCount.objects.filter(tag_id=vip.pk).values_list("delta", flat=True)) == [FOLD_TAG_COUNTS_AT + 2]
    assert _listed_counts(api) == {"vip": FOLD_TAG_COUNTS_AT + 2}


def test_a_tags_contact_count_stays_exact_through_an_import_and_its_revert(api, acme):
    """The importer writes links in its own statements (COPY on PostgreSQL, with the tag_ids
    trigger off), and its revert removes them: the count triggers see both."""
    from django.test import TestCase

    from ..imports.helpers import csv_bytes, drain_queue, run_import_bytes

    make_contact(acme, phone="+19195550101", tags=["vip"])
    job = run_import_bytes(acme, csv_bytes("phone,first_name,tags\n9195550101,Ann,\"vip, news\"\n"
                                           "9195550102,Bo,news\n9195550103,Cy,\"news, press\"\n"))
    assert (job.created, job.updated) == (2, 1), job.error
    assert _listed_counts(api) == _true_counts(acme) == {"vip": 1, "news": 3, "press": 1}
    with TestCase.captureOnCommitCallbacks(execute=True):  # the revert job is queued on commit
        assert api.post(f"/api/v1/imports/{job.pk}/revert").status_code == 202
    drain_queue()
    assert _listed_counts(api) == _true_counts(acme) == {"vip": 1, "news": 0, "press": 0}
