"""Issue 14: every card the exporter writes parses with vobject (an independent vCard reader),
on both paths and both databases, with the names and tags it was given."""

from __future__ import annotations

import pytest
import vobject

from contacts.exports import export_rows, vcard_chunks
from contacts.models import Contact

from .test_export_fast import TRICKY, tricky_book  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("fast", [False, True])
def test_every_exported_card_parses_with_vobject(tricky_book, fast):  # noqa: F811
    from django.db import connection

    if fast and connection.vendor != "postgresql":
        pytest.skip("the COPY path is PostgreSQL's")
    data = b"".join(vcard_chunks(export_rows(Contact.objects.for_org(tricky_book), org=tricky_book, fast=fast)))
    cards = list(vobject.readComponents(data.decode("utf-8")))
    assert len(cards) == Contact.objects.for_org(tricky_book).count() == len(TRICKY) + 2
    by_uid = {card.uid.value: card for card in cards}
    for contact in Contact.objects.for_org(tricky_book).prefetch_related("tags"):
        card = by_uid[str(contact.pk)]
        name = contact.display_name or contact.full_name or contact.email or contact.phone
        assert card.fn.value == name.replace("\r\n", "\n").replace("\r", "\n")  # vCard has no bare CR
        if contact.notes:
            assert card.note.value == contact.notes.replace("\r\n", "\n").replace("\r", "\n")
        names = sorted(tag.name for tag in contact.tags.all())
        assert sorted(card.categories.value if names else []) == names
