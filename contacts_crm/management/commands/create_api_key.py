from django.core.management.base import BaseCommand, CommandError

from contacts_crm.models import ApiKey, Organization


class Command(BaseCommand):
    help = "Create an API key. The key is printed once, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Organization slug.")
        parser.add_argument("--scope", required=True, choices=[s.value for s in ApiKey.Scope])
        parser.add_argument("--name", required=True)

    def handle(self, *args, org, scope, name, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization with slug '{org}'.")
        key, raw = ApiKey.generate(organization=organization, name=name, scope=scope)
        self.stderr.write(f"Created {scope} key '{name}' for {organization.slug} (prefix {key.prefix}).")
        self.stdout.write(raw)
