import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from contacts_crm.models import ApiKey, Membership, Organization

DEMO_SLUG = "demo"
DEMO_USER = "demo"


class Command(BaseCommand):
    help = "Create a demo organization, a staff user (admin role), a write API key and a few contacts."

    def add_arguments(self, parser):
        parser.add_argument("--first-run", action="store_true", help="Do nothing if the demo already exists.")
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))

    def handle(self, *args, first_run, port, **options):
        admin_url = f"http://127.0.0.1:{port}/admin/"
        password = os.environ.get("DEMO_PASSWORD")
        User = get_user_model()
        org = Organization.objects.filter(slug=DEMO_SLUG).first()
        if org is not None and first_run:
            user = User.objects.filter(username=DEMO_USER).first()
            if user and password:
                user.set_password(password)
                user.save(update_fields=["password"])
            self.stdout.write(
                f"Admin: {admin_url}  user '{DEMO_USER}' "
                + ("(password from DEMO_PASSWORD)" if password else
                   "(password shown on the first run; set DEMO_PASSWORD=... to reset it)")
            )
            self.stdout.write(
                "API key: shown once, on the first run. A new one: admin → API keys → Add, or\n"
                f"  .venv/bin/python manage.py create_api_key --org {DEMO_SLUG} --scope write --name me"
            )
            return
        password = password or secrets.token_urlsafe(12)
        with transaction.atomic():
            org, _ = Organization.objects.get_or_create(slug=DEMO_SLUG, defaults={"name": "Demo Inc."})
            user, _ = User.objects.get_or_create(username=DEMO_USER, defaults={"is_staff": True})
            user.is_staff = True
            user.set_password(password)
            user.save()
            Membership.objects.update_or_create(user=user, defaults={"organization": org, "role": "admin"})
            _, raw_key = ApiKey.generate(organization=org, name="demo key", scope="write")
            seeded = self.seed_contacts(org, user)
        self.stdout.write(
            f"\nDemo organization '{org.slug}' ready ({seeded} contacts).\n"
            f"  Admin:    {admin_url}\n  Login:    {DEMO_USER} / {password}\n"
            f"  API key:  {raw_key}\n"
            f"  Try:      curl -H 'Authorization: Bearer {raw_key}' http://127.0.0.1:{port}/api/v1/organization\n"
        )

    def seed_contacts(self, org, user) -> int:
        try:
            from contacts.demo import seed_demo_contacts
        except ImportError:
            return 0
        return seed_demo_contacts(org=org, user=user)
