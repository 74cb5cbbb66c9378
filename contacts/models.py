from __future__ import annotations

import os
import time
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from contacts_crm.models import Organization
from contacts_crm.tenancy import OrgQuerySet

from .querysets import ContactQuerySet
from .search import DOCUMENT_FIELDS, search_document


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7): 48-bit Unix milliseconds, then random bits.

    New keys land at the right edge of the primary-key btree instead of at random pages, which
    keeps bulk imports from thrashing the index (random uuid4 keys measurably slow them).
    """
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # 12 random bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    WHATSAPP = "whatsapp", "WhatsApp"
    EMAIL = "email", "Email"
    RCS = "rcs", "RCS"
    VIBER = "viber", "Viber"
    VOICE = "voice", "Voice"


class ConsentSource(models.TextChoices):
    API = "api", "API"
    ADMIN = "admin", "Admin"
    IMPORT = "import", "Import"
    KEYWORD = "keyword", "Keyword (inbound STOP/START)"


class Contact(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="contacts")
    phone = models.CharField(max_length=20, null=True, blank=True, help_text="E.164, e.g. +19195551234.")
    email = models.CharField(max_length=254, null=True, blank=True)
    email_key = models.CharField(
        max_length=254, null=True, blank=True, editable=False,
        help_text="The email casefolded in Python: the unique key, identical on SQLite and PostgreSQL.",
    )
    first_name = models.CharField(max_length=100, blank=True, default="")
    last_name = models.CharField(max_length=100, blank=True, default="")
    display_name = models.CharField(max_length=200, blank=True, default="")
    company = models.CharField(max_length=200, blank=True, default="")
    address = models.CharField(max_length=300, blank=True, default="")
    city = models.CharField(max_length=100, blank=True, default="")
    state = models.CharField(max_length=64, blank=True, default="", help_text="US/CA: the 2-letter code.")
    zip = models.CharField("ZIP / postal code", max_length=16, blank=True, default="")
    country = models.CharField(max_length=2, blank=True, default="", help_text="ISO 3166-1 alpha-2.")
    timezone = models.CharField(max_length=64, blank=True, default="", help_text="IANA name, e.g. America/New_York.")
    lifecycle_stage = models.CharField(max_length=32, blank=True, default="", help_text="e.g. lead, customer, churned.")
    gender = models.CharField(max_length=32, blank=True, default="", help_text="e.g. female, male, other.")
    avatar_url = models.URLField(max_length=500, blank=True, default="")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_contacts"
    )
    is_test = models.BooleanField(default=False, help_text="Test contacts are kept out of real campaigns.")
    is_textable = models.BooleanField(
        null=True, blank=True, help_text="Can this phone receive SMS? Empty = unknown."
    )
    textable_checked_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When textability was last checked; empty = never. Set with an unknown result = could not tell.",
    )
    opted_out = models.BooleanField(default=False, help_text="Global do-not-contact, on every channel.")
    opted_out_at = models.DateTimeField(null=True, blank=True)
    opt_out_source = models.CharField(max_length=16, blank=True, default="", choices=ConsentSource.choices)
    custom_fields = models.JSONField(default=dict, blank=True)
    notes = models.TextField(blank=True, default="")
    birthday = models.DateField(null=True, blank=True)
    language = models.CharField(max_length=16, blank=True, default="", help_text="e.g. en, es-MX.")
    external_id = models.CharField(max_length=255, blank=True, default="", help_text="Your system's id.")
    secondary_phones = models.JSONField(default=list, blank=True, help_text="Extra numbers (E.164), not matched on.")
    secondary_emails = models.JSONField(default=list, blank=True, help_text="Extra addresses, not matched on.")
    tag_ids = models.JSONField(
        default=list, blank=True, editable=False,
        help_text="PostgreSQL: the contact's tag ids, kept by a trigger on the tag links, for a GIN index.",
    )
    search_doc = models.TextField(
        blank=True, default="", db_default="", editable=False,
        help_text="Names, company, emails and phone digits, folded (contacts.search): what search reads.",
    )
    created_at = models.DateTimeField(db_index=False)
    updated_at = models.DateTimeField(db_index=False)

    tags = models.ManyToManyField("Tag", through="ContactTag", related_name="contacts", blank=True)

    objects = ContactQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "phone"], name="contact_unique_phone_per_org"),
            models.UniqueConstraint(fields=["organization", "email_key"], name="contact_unique_email_per_org"),
            models.CheckConstraint(
                condition=Q(phone__isnull=False) | Q(email__isnull=False), name="contact_has_phone_or_email"
            ),
            models.CheckConstraint(condition=~Q(phone=""), name="contact_phone_not_blank"),
            models.CheckConstraint(condition=~Q(email=""), name="contact_email_not_blank"),
        ]
        indexes = [
            # Keyset paging for both sorts (id breaks ties).
            models.Index(fields=["organization", "updated_at", "id"], name="contact_org_updated"),
            models.Index(fields=["organization", "created_at", "id"], name="contact_org_created"),
            # The filters whose index a measured query needs (bench/README.md, "Index diet"):
            # every other btree cost each import more than it saved a query (migration 0005).
            models.Index(fields=["organization", "state", "updated_at", "id"], name="contact_org_state"),
            models.Index(fields=["organization", "zip"], name="contact_org_zip"),
            # The admin's lifecycle-stage filter lists its choices by a skip scan of this index
            # (contacts.admin.distinct_values): without it the changelist takes 1.5 s at 1M.
            models.Index(fields=["organization", "lifecycle_stage", "updated_at", "id"], name="contact_org_stage"),
            models.Index(fields=["organization", "opted_out", "updated_at", "id"], name="contact_org_opted_out"),
            # PostgreSQL only, created by migrations: the pg_trgm GIN index on search_doc (0005)
            # and the jsonb GIN index on tag_ids (0004).
        ]

    def __str__(self):
        return self.full_name or self.email or self.phone or str(self.id)

    def save(self, *args, **kwargs):
        # One search document per contact, rebuilt on every save from the fields it holds
        # (contacts.search): a partial save that touches one of them writes it too.
        update_fields = kwargs.get("update_fields")
        if update_fields is None or set(update_fields) & set(DOCUMENT_FIELDS):
            self.search_doc = search_document({name: getattr(self, name) for name in DOCUMENT_FIELDS})
            if update_fields is not None and "search_doc" not in update_fields:
                kwargs["update_fields"] = [*update_fields, "search_doc"]
        # tag_ids belongs to the database trigger: a save of a contact loaded before its tags
        # changed must not write back its stale copy.
        if not self._state.adding and kwargs.get("update_fields") is None and not kwargs.get("force_insert"):
            kwargs["update_fields"] = [
                f.name for f in self._meta.concrete_fields if not f.primary_key and f.name != "tag_ids"
            ]
        super().save(*args, **kwargs)

    @property
    def full_name(self) -> str:
        name = " ".join(part for part in (self.first_name, self.last_name) if part)
        return name or self.display_name


class Tag(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=64, help_text="The first spelling seen is kept.")
    key = models.CharField(max_length=64, editable=False, help_text="Casefolded name: tags compare case-insensitively.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "key"], name="tag_unique_per_org")]

    def __str__(self):
        return self.name


class ContactTag(models.Model):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="tag_links")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="contact_links")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact", "tag"], name="contact_tag_unique")]
        indexes = [models.Index(fields=["tag", "contact"], name="contact_tag_by_tag")]

    def __str__(self):
        return f"{self.contact_id} → {self.tag_id}"


class ChannelPreference(models.Model):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="preferences")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    opted_in = models.BooleanField(help_text="No row means opted in.")
    changed_at = models.DateTimeField()
    source = models.CharField(max_length=16, choices=ConsentSource.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact", "channel"], name="preference_unique_channel")]
        indexes = [models.Index(fields=["channel", "opted_in", "contact"], name="preference_by_channel")]

    def __str__(self):
        return f"{self.channel}: {'in' if self.opted_in else 'out'}"


class ContactEvent(models.Model):
    class Kind(models.TextChoices):
        CREATED = "created"
        UPDATED = "updated"
        MERGED = "merged"
        IMPORTED = "imported"
        TAGS_ADDED = "tags_added"
        TAGS_REMOVED = "tags_removed"
        OPTED_OUT = "opted_out"
        OPTED_IN = "opted_in"
        LIST_ADDED = "list_added"
        LIST_REMOVED = "list_removed"
        TEXTABILITY_CHECKED = "textability_checked"
        MESSAGE_SENT = "message_sent"
        MESSAGE_DELIVERED = "message_delivered"
        MESSAGE_FAILED = "message_failed"
        MESSAGE_RECEIVED = "message_received"
        MESSAGE_READ = "message_read"
        MESSAGE_CLICKED = "message_clicked"

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    data = models.JSONField(default=dict, blank=True)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_api_key = models.ForeignKey(
        "contacts_crm.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=100, blank=True, default="", help_text="e.g. 'import 42'.")
    created_at = models.DateTimeField()

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["contact", "created_at", "id"], name="event_by_contact")]

    def __str__(self):
        return f"{self.kind} {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def actor_display(self) -> str:
        if self.actor_api_key_id:
            return f"API key {self.actor_api_key.name}" if self.actor_api_key else "API key"
        if self.actor_user_id:
            return str(self.actor_user)
        return self.actor_label or "system"


class CustomField(models.Model):
    class Type(models.TextChoices):
        TEXT = "text"
        NUMBER = "number"
        DATE = "date"
        BOOLEAN = "boolean"
        CHOICE = "choice"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="custom_fields")
    key = models.CharField(max_length=50, help_text="Lowercase letters, digits and _; starts with a letter.")
    label = models.CharField(max_length=100, blank=True, default="")
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.TEXT)
    choices = models.JSONField(default=list, blank=True, help_text="Allowed values for a choice field.")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["organization", "key"], name="custom_field_unique_key")]

    def __str__(self):
        return self.label or self.key
