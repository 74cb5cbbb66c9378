"""`manage.py check_textability --org SLUG [--only-unknown] [--limit N] [--yes]`."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from contacts.exports import iter_batches
from contacts.models import Contact
from contacts.textability import JOB_BATCH, TextabilityConfigError, contacts_check_textability, get_provider
from contacts_crm.models import Organization

DEFAULT_LIMIT = 100


class Command(BaseCommand):
    help = ("Look up again whether the organization's phones can receive texts, with the provider of "
            "TEXTABILITY_PROVIDER, and record the answers (one textability_checked event each). A paid provider "
            f"asks for confirmation before more than --limit lookups (default {DEFAULT_LIMIT}); without a "
            "terminal it then refuses unless --yes.")

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Organization slug.")
        parser.add_argument("--only-unknown", action="store_true",
                            help="Only contacts whose textability is unknown (never checked, or could not tell).")
        parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                            help="Lookups a paid provider makes without asking (default %(default)s).")
        parser.add_argument("--yes", action="store_true", help="Confirm a paid run above --limit without asking.")
        parser.add_argument("--provider", help="Override TEXTABILITY_PROVIDER for this run (offline, twilio).")

    def handle(self, *args, org, only_unknown, limit, yes, provider, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization with the slug '{org}'.")
        try:
            lookup = get_provider(provider)
        except TextabilityConfigError as exc:
            raise CommandError(str(exc)) from None
        qs = Contact.objects.for_org(organization).filter(phone__isnull=False)
        if only_unknown:
            qs = qs.filter(is_textable__isnull=True)
        count = qs.count()
        if lookup.paid and count > limit and not yes:
            question = (f"Look up {count:,} numbers with {lookup.name}, a paid lookup each "
                        f"(more than --limit {limit})?")
            if not sys.stdin.isatty():
                raise CommandError(f"{question} Refusing without a terminal: pass --yes, or a higher --limit.")
            answer = input(f"{question} [y/N] ").strip().lower()
            if answer not in ("y", "yes"):
                raise CommandError("Cancelled: nothing was looked up.")
        totals: dict[str, int] = {}
        batch_size = 2000 if lookup.inline else JOB_BATCH
        done = 0
        try:
            for batch in iter_batches(qs.only("id", "phone"), batch_size):
                for name, value in contacts_check_textability(contacts=batch, provider=lookup).items():
                    totals[name] = totals.get(name, 0) + value
                done += len(batch)
                if self.stderr.isatty():
                    self.stderr.write(f"\r{done:,} / {count:,}", ending="")
        except TextabilityConfigError as exc:
            raise CommandError(f"{exc} ({totals.get('checked', 0):,} recorded before the error).") from None
        summary = ", ".join(f"{name} {totals.get(name, 0):,}"
                            for name in ("checked", "textable", "not_textable", "unknown", "errors", "skipped"))
        self.stdout.write(f"{organization.slug}: {summary} ({lookup.name}).")
