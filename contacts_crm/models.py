from __future__ import annotations

import hashlib
import secrets
import string
from datetime import timedelta

from django.conf import settings
from django.core.cache import caches
from django.core.validators import RegexValidator
from django.db import models, transaction
from django.utils import timezone
from django.utils.connection import ConnectionProxy

from .tenancy import OrgQuerySet

REGION_VALIDATOR = RegexValidator(r"^[A-Z]{2}$", "Use a two-letter ISO 3166 region code such as US or GB.")
# The cached API keys and the throttle's state (settings.CACHES["api"]: Redis, or process memory).
api_cache = ConnectionProxy(caches, "api")


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    default_region = models.CharField(
        max_length=2,
        default="US",
        validators=[REGION_VALIDATOR],
        help_text="Region used to read phone numbers written without a country code (ISO 3166 alpha-2).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        # The cached API keys carry their organization (its region reads every phone).
        if self.pk:
            ApiKey.forget_cached(self.api_keys.values_list("prefix", flat=True))


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="crm_membership",
        help_text="A staff user belongs to exactly one organization.",
    )
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(
        max_length=16,
        choices=Role.choices,
        default=Role.MEMBER,
        help_text="Members cannot manage API keys or delete contacts in bulk.",
    )

    objects = OrgQuerySet.as_manager()

    def __str__(self):
        return f"{self.user} @ {self.organization} ({self.role})"


KEY_ALPHABET = string.ascii_letters + string.digits
KEY_PREFIX_LEN = 8
KEY_SECRET_LEN = 32


def hash_api_key(raw_key: str) -> str:
    # The secret is 190 random bits, so a fast hash is enough: nothing to brute-force, and a slow
    # KDF would cost every API request.
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiKey(models.Model):
    class Scope(models.TextChoices):
        READ = "read", "Read"
        WRITE = "write", "Read and write"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, help_text="What the key is for, e.g. 'Zapier sync'.")
    prefix = models.CharField(max_length=16, unique=True, editable=False, help_text="Public part of the key.")
    hashed_secret = models.CharField(max_length=64, editable=False)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.READ)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        ApiKey.forget_cached([self.prefix])

    def delete(self, *args, **kwargs):
        prefix = self.prefix
        result = super().delete(*args, **kwargs)
        ApiKey.forget_cached([prefix])
        return result

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def generate(cls, *, organization, name, scope, created_by=None) -> tuple[ApiKey, str]:
        """Create a key; returns (key, raw key). The raw key is never stored: show it once."""
        prefix = "ck_" + "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_PREFIX_LEN))
        secret = "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_SECRET_LEN))
        raw = f"{prefix}.{secret}"
        key = cls.objects.create(
            organization=organization,
            name=name,
            scope=scope,
            prefix=prefix,
            hashed_secret=hash_api_key(raw),
            created_by=created_by,
        )
        return key, raw

    def revoke(self):
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            self.save(update_fields=["revoked_at"])

    @classmethod
    def revoke_many(cls, queryset) -> int:
        """Revokes every active key of `queryset` (the admin's action); returns how many."""
        keys = queryset.filter(revoked_at__isnull=True)
        prefixes = list(keys.values_list("prefix", flat=True))
        count = keys.update(revoked_at=timezone.now())
        cls.forget_cached(prefixes)
        return count

    @classmethod
    def by_prefix(cls, prefix: str) -> ApiKey | None:
        """The key with this prefix, its organization loaded: from the "api" cache (for up to
        API_KEY_CACHE_SECONDS), else one query. Revoked keys too: the caller checks."""
        cache_key = _key_cache_key(prefix)
        key = api_cache.get(cache_key)
        if key is None:
            key = cls.objects.select_related("organization").filter(prefix=prefix).first()
            if key is not None:
                api_cache.set(cache_key, key, settings.API_KEY_CACHE_SECONDS)
        return key

    @staticmethod
    def forget_cached(prefixes) -> None:
        """Drops these keys from the "api" cache now and again after the commit: a request that
        read the old row before the commit may have cached it in between."""
        cache_keys = [_key_cache_key(prefix) for prefix in prefixes]
        if cache_keys:
            api_cache.delete_many(cache_keys)
            transaction.on_commit(lambda: api_cache.delete_many(cache_keys))

    def touch(self):
        """Record use, at most one write a minute per key (per process without Redis: each one
        caches the key with its own last_used_at)."""
        now = timezone.now()
        if self.last_used_at and now - self.last_used_at < timedelta(minutes=1):
            return
        written = ApiKey.objects.filter(pk=self.pk, revoked_at__isnull=True).filter(
            models.Q(last_used_at__isnull=True) | models.Q(last_used_at__lt=now - timedelta(minutes=1))
        ).update(last_used_at=now)
        self.last_used_at = now
        if written:
            # The cached copy learns the write, or every request after the minute would try it again.
            api_cache.set(_key_cache_key(self.prefix), self, settings.API_KEY_CACHE_SECONDS)
        else:
            # Another process wrote it, or the key was revoked meanwhile (caching this copy again
            # would undo forget_cached): the next request reads the row afresh.
            api_cache.delete(_key_cache_key(self.prefix))


def _key_cache_key(prefix: str) -> str:
    return f"apikey:{prefix}"
