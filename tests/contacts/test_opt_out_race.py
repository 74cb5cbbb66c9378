"""Issue 13 item 9: an opt-out of an unknown phone racing another one answers 201 or 200, never
409, and leaves one opted-out contact (like the create race of contact_create_or_merge)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from contacts import services
from contacts.models import Contact

from ..conftest import client_with_key


def test_an_opt_out_that_loses_the_create_race_opts_the_winner_out(api, acme, monkeypatch):
    """The losing request read "nobody has this phone" just before the winner committed: its
    INSERT hits the unique (org, phone) constraint, and it must retry as an opt-out of the winner."""
    winner = services.contact_create(org=acme, data={"phone": "+19195550999"}, actor=services.Actor(label="t"))
    real_find, calls = services.contact_find_match, []

    def find_as_before_the_winner_committed(**kwargs):
        calls.append(kwargs)
        return None if len(calls) == 1 else real_find(**kwargs)

    monkeypatch.setattr(services, "contact_find_match", find_as_before_the_winner_committed)
    response = api.post("/api/v1/contacts/opt-out", {"phone": "+19195550999"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["id"] == str(winner.pk)
    winner.refresh_from_db()
    assert winner.opted_out is True
    assert Contact.objects.filter(phone="+19195550999").count() == 1


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite runs one writer at a time")
@pytest.mark.parametrize("channel", [None, "sms"])
def test_on_postgres_twenty_concurrent_opt_outs_of_an_unknown_phone_never_answer_409(acme_write_key, transactional_db,
                                                                                    channel):
    statuses, barrier = [], threading.Barrier(20)
    body = {"phone": "+19195550998", **({"channel": channel} if channel else {})}

    def opt_out():
        try:
            barrier.wait()
            statuses.append(client_with_key(acme_write_key).post(
                "/api/v1/contacts/opt-out", body, format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=opt_out) for _ in range(20)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(set(statuses)) in ([200, 201], [201]), statuses
    assert statuses.count(201) == 1
    contact = Contact.objects.get(phone="+19195550998")
    if channel:  # a channel opt-out leaves the global flag alone (design §4)
        assert list(contact.preferences.values_list("channel", "opted_in")) == [(channel, False)]
        assert contact.opted_out is False
    else:
        assert contact.opted_out is True
