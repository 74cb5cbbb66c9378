from django.core.management.base import BaseCommand

from imports.pipeline import requeue_stale_imports


class Command(BaseCommand):
    help = ("Requeues running imports whose worker gave no sign of life for IMPORT_STALE_SECONDS; each resumes "
            "from its last committed chunk. `make worker` does this by itself (at start and periodically).")

    def add_arguments(self, parser):
        parser.add_argument("--stale-seconds", type=int, default=None)

    def handle(self, *args, stale_seconds=None, **options):
        ids = requeue_stale_imports(stale_seconds=stale_seconds)
        self.stdout.write(f"Requeued {len(ids)} import(s){': ' + ', '.join(map(str, ids)) if ids else ''}.")
