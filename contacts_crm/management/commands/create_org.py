from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from contacts_crm.models import Organization


class Command(BaseCommand):
    help = "Create an organization (a tenant)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--region", default="US", help="Default phone region, ISO 3166 alpha-2 (default US).")

    def handle(self, *args, slug, name, region, **options):
        org = Organization(slug=slug, name=name, default_region=region.upper())
        try:
            org.full_clean()
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        org.save()
        self.stdout.write(f"Created organization {org.slug} (id {org.pk}, region {org.default_region}).")
