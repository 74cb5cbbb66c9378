"""Settings for the test suite: the real settings, with a test secret and synchronous jobs."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-9f8e7d6c5b4a")
os.environ.setdefault("JOBS_SYNC", "1")

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
API_THROTTLE_RATE = "100000/min"
MEDIA_ROOT = BASE_DIR / ".test-media"  # noqa: F405
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not memory: worker processes started by the tests must see the test database.
    # One per run: a killed worker can leave -wal/-shm files behind that break the next run.
    import tempfile

    DATABASES["default"]["TEST"] = {"NAME": os.path.join(tempfile.gettempdir(), f"crm-test-{os.getpid()}.sqlite3")}  # noqa: F405
# No collectstatic before the tests: the production profile's manifest storage would refuse
# every {% static %} of the admin pages.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("whitenoise.")]  # noqa: F405
