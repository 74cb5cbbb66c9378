"""`manage.py rebuild_search_docs [--org SLUG] [--batch N]`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from contacts.models import Contact
from contacts.search import rebuild_search_documents
from contacts_crm.models import Organization


class Command(BaseCommand):
    help = ("Rewrite every contact's search document where it differs from what contacts.search builds: after a "
            "deploy that changes the document, or writes made by code that did not keep it. Batched, each batch "
            "its own short transaction: safe on a live database.")

    def add_arguments(self, parser):
        parser.add_argument("--org", help="Only this organization (slug).")
        parser.add_argument("--batch", type=int, default=5000, help="Rows per transaction (default %(default)s).")

    def handle(self, *args, org=None, batch=5000, **options):
        if batch < 1:
            raise CommandError("--batch must be at least 1.")
        queryset = None
        if org:
            organization = Organization.objects.filter(slug=org).first()
            if organization is None:
                raise CommandError(f"No organization with the slug {org!r}.")
            queryset = Contact._base_manager.filter(organization=organization)
        count = rebuild_search_documents(Contact, batch=batch, queryset=queryset)
        self.stdout.write(f"{count} search document(s) rewritten.")
