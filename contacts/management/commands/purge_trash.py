"""`manage.py purge_trash [--org SLUG] [--schedule]`: delete for good what has been in the trash
longer than TRASH_RETENTION_DAYS (contacts.trash.contacts_purge). `make worker` runs it with
--schedule first, which hands the hourly repeat to RQ's scheduler."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from contacts.trash import contacts_purge, purge_trash_schedule
from contacts_crm.models import Organization


class Command(BaseCommand):
    help = "Purge contacts that have been in the trash longer than TRASH_RETENTION_DAYS (make worker schedules it hourly)."

    def add_arguments(self, parser):
        parser.add_argument("--org", help="Only this organization (slug).")
        parser.add_argument("--schedule", action="store_true",
                            help="Do not purge now: schedule the hourly purge job in RQ (needs REDIS_URL).")

    def handle(self, *args, org=None, schedule=False, **options):
        if schedule:
            if not purge_trash_schedule():
                raise CommandError("--schedule needs REDIS_URL (without Redis, run purge_trash from cron).")
            self.stdout.write("Scheduled the trash purge job (hourly, through RQ's scheduler).")
            return
        organization = None
        if org:
            organization = Organization.objects.filter(slug=org).first()
            if organization is None:
                raise CommandError(f"No organization with the slug '{org}'.")
        count = contacts_purge(org=organization)
        self.stdout.write(f"Purged {count} contact(s).")
