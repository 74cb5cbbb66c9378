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


# Contacts not in the trash: the condition of the partial indexes that serve live reads.
LIVE = Q(deleted_at__isnull=True)


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
    SUPPRESSION = "suppression", "Suppression list"


class Contact(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    # No index of its own: (organization, phone) serves "every row of the organization" (the cascade
    # of an organization's deletion), and contact_org_live serves every live read.
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="contacts",
                                     db_index=False)
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
    # Trash (contacts.trash): a trashed contact is invisible everywhere (for_org hides it) until it
    # is restored or purged after TRASH_RETENTION_DAYS.
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False, help_text="In the trash since.")
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False,
        db_index=False,  # contact_org_trashed_by, partial: an index on a million NULLs costs every import
    )
    deleted_by_label = models.CharField(max_length=100, blank=True, default="", editable=False,
                                        help_text="Who trashed it, e.g. 'API key zapier'.")

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
            # Keyset paging for both sorts (id breaks ties). Partial (live rows): every read of live
            # contacts says `deleted_at IS NULL` (for_org), and only an index whose predicate matches
            # lets a count stay an index-only scan (bench/trash_bench.py: 5.7x slower without).
            models.Index(fields=["organization", "updated_at", "id"], name="contact_org_updated", condition=LIVE),
            models.Index(fields=["organization", "created_at", "id"], name="contact_org_created", condition=LIVE),
            # The filters whose index a measured query needs (bench/README.md, "Index diet"):
            # every other btree cost each import more than it saved a query (migration 0005).
            models.Index(fields=["organization", "state", "updated_at", "id"], name="contact_org_state"),
            models.Index(fields=["organization", "zip"], name="contact_org_zip"),
            # The admin's lifecycle-stage filter lists its choices by a skip scan of this index
            # (contacts.admin.distinct_values): without it the changelist takes 1.5 s at 1M.
            models.Index(fields=["organization", "lifecycle_stage", "updated_at", "id"], name="contact_org_stage"),
            models.Index(fields=["organization", "opted_out", "updated_at", "id"], name="contact_org_opted_out",
                         condition=LIVE),
            # PostgreSQL only, created by migrations: the pg_trgm GIN index on search_doc (0005)
            # and the jsonb GIN index on tag_ids (0004).
            # The trash view and the purge job: a small partial index (live rows are not in it).
            models.Index(fields=["organization", "deleted_at"], name="contact_org_trashed",
                         condition=Q(deleted_at__isnull=False)),
            models.Index(fields=["deleted_by"], name="contact_trashed_by", condition=Q(deleted_by__isnull=False)),
            # The organization's live contacts: the narrowest index, so that a count of them stays an
            # index-only scan as fast as the plain foreign-key index it replaces.
            models.Index(fields=["organization"], name="contact_org_live", condition=LIVE),
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


class TagLinkCount(models.Model):
    """How many contacts a tag links, trash included, as deltas that triggers on ContactTag append
    (migration 0010): each statement that adds, removes or moves links appends one row per tag it
    touched (PostgreSQL, from the statement's transition tables; SQLite, one row per link), so no
    two writers of a tag ever wait on one counter row, and no path that writes links (the
    services, the importer's COPY, cascades) has to remember it. A tag's link count is the sum of
    its rows; contacts.counting.tag_contact_counts reads it and folds a tag's rows into one when
    they pile up."""

    # No foreign key: deleting a tag removes its links, whose trigger appends rows for the tag
    # being deleted. A deleted tag's rows sum to 0 and are never read.
    tag_id = models.BigIntegerField(help_text="The tag whose links changed.")
    delta = models.BigIntegerField(help_text="Links added (negative: removed) by one statement.")

    class Meta:
        indexes = [models.Index(fields=["tag_id", "delta"], name="tag_link_count_by_tag")]

    def __str__(self):
        return f"tag {self.tag_id}: {self.delta:+d}"


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
        TRASHED = "trashed"
        RESTORED = "restored"
        SUPPRESSED = "suppressed"
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


# --- consent: suppression list, ledger, tombstones, keywords (contacts.consent, contacts.trash) ---
def scope_all() -> str:
    return "all"


class Suppression(models.Model):
    """A phone or email that must never be messaged again, kept after its contact is gone.

    Only a keyed hash of the value is stored (HMAC-SHA256 with SECRET_KEY of the E.164 phone or the
    casefolded email): the list answers "is this value suppressed?" without holding it.
    """

    class Kind(models.TextChoices):
        PHONE = "phone"
        EMAIL = "email"

    class Source(models.TextChoices):
        PURGE = "purge", "Purged from the trash"
        ERASE = "erase", "Erased (GDPR)"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="suppressions")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    value_hash = models.CharField(max_length=64, editable=False, help_text="HMAC-SHA256 of the value, hex.")
    scope = models.JSONField(default=scope_all, help_text='"all", or the list of channels opted out of.')
    since = models.DateTimeField(help_text="When the person opted out (or, for an erase, when it happened).")
    source = models.CharField(max_length=16, choices=Source.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True, editable=False)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    lift_reason = models.TextField(blank=True, default="", help_text="Why the entry was lifted (kept).")

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["-since", "-id"]
        indexes = [models.Index(fields=["organization", "kind", "value_hash"], name="suppression_lookup"),
                   models.Index(fields=["organization", "since", "id"], name="suppression_by_since")]

    def __str__(self):
        return f"{self.kind} suppressed since {self.since:%Y-%m-%d}"

    @property
    def is_active(self) -> bool:
        return self.lifted_at is None


class ConsentRecord(models.Model):
    """The consent ledger: one row per change of the global opt-out or a channel preference.

    Rows are appended, never updated (save() refuses), with one exception: when the contact is
    purged or erased, its rows are detached (contact set to NULL, evidence stripped of message
    text) and keep only the suppression hashes in `subject_hashes`.
    """

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="consent_records")
    subject_hashes = models.JSONField(default=list, blank=True,
                                      help_text="After a purge: the hashes of the phone/email (see Suppression).")
    channel = models.CharField(max_length=16, null=True, blank=True, choices=Channel.choices,
                               help_text="Empty = the global do-not-contact flag.")
    opted_in = models.BooleanField()
    source = models.CharField(max_length=16, choices=ConsentSource.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_api_key = models.ForeignKey(
        "contacts_crm.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=100, blank=True, default="")
    evidence = models.JSONField(default=dict, blank=True,
                                help_text="The keyword message's text and id, the import id, the API key name.")
    created_at = models.DateTimeField()

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["contact", "created_at", "id"], name="consent_by_contact")]

    def __str__(self):
        return f"{self.channel or 'global'}: {'in' if self.opted_in else 'out'} ({self.source})"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("Consent records are append-only.")
        super().save(*args, **kwargs)


class ContactTombstone(models.Model):
    """A trashed or purged contact, for GET /contacts/deleted (systems that sync from us).

    Written when a contact is trashed, removed when it is restored, marked purged (and kept) when
    it is deleted for good. Holds no personal data.
    """

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    contact_id = models.UUIDField()
    deleted_at = models.DateTimeField()
    purged_at = models.DateTimeField(null=True, blank=True)
    changed_at = models.DateTimeField(help_text="The later of deleted_at and purged_at: the feed's order.")

    objects = OrgQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "contact_id"], name="tombstone_unique")]
        indexes = [models.Index(fields=["organization", "changed_at", "id"], name="tombstone_feed")]

    def __str__(self):
        return f"{self.contact_id} {'purged' if self.purged_at else 'trashed'}"


class KeywordSettings(models.Model):
    """An organization's own inbound keywords (added to the defaults) and replies."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="keyword_settings")
    opt_out_words = models.CharField(max_length=500, blank=True, default="",
                                     help_text="Extra words that opt out of the channel, comma-separated.")
    opt_out_all_words = models.CharField(max_length=500, blank=True, default="",
                                         help_text="Extra words that opt out of every channel, comma-separated.")
    opt_in_words = models.CharField(max_length=500, blank=True, default="",
                                    help_text="Extra words that opt back in on the channel, comma-separated.")
    help_words = models.CharField(max_length=500, blank=True, default="",
                                  help_text="Extra words that ask for help, comma-separated.")
    reply_opted_out = models.CharField(max_length=320, blank=True, default="",
                                       help_text="Reply to an opt-out. Empty = the default.")
    reply_opted_in = models.CharField(max_length=320, blank=True, default="",
                                      help_text="Reply to an opt-in. Empty = the default.")
    reply_help = models.CharField(max_length=320, blank=True, default="",
                                  help_text="Reply to HELP. Empty = the default.")

    objects = OrgQuerySet.as_manager()

    class Meta:
        verbose_name = "keyword settings"
        verbose_name_plural = "keyword settings"

    def __str__(self):
        return f"Keywords of {self.organization}"


class TrashedContact(Contact):
    """The admin's Trash: the same rows, through their own admin page."""

    class Meta:
        proxy = True
        verbose_name = "trashed contact"
        verbose_name_plural = "trash"


def export_path(job, filename):
    return f"exports/{job.organization_id}/{filename}"


class ExportJob(models.Model):
    """A big export run in the background (contacts.export_jobs): the file it wrote and a link to
    it valid for EXPORT_LINK_HOURS. The row outlives the file: the purge marks it expired."""

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "Excel (.xlsx)"
        VCF = "vcf", "vCard"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired (file deleted)"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="exports")
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.CSV)
    params = models.JSONField(default=dict, blank=True,
                              help_text="The export's filters, as GET /contacts/export takes them (name → value).")
    admin_query = models.TextField(blank=True, default="", help_text="An admin export: the contacts changelist's "
                                   "query string, read again as the user's changelist when the job runs.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    rows_done = models.IntegerField(default=0, help_text="Contacts written so far.")
    rows_total = models.IntegerField(null=True, blank=True, help_text="Contacts matching when the job started.")
    file = models.FileField(upload_to=export_path, max_length=300, blank=True)
    error = models.TextField(blank=True, default="", help_text="Why the export failed.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_key = models.ForeignKey(
        "contacts_crm.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True,
                                      help_text="When the download link stops working (finished + EXPORT_LINK_HOURS).")

    objects = OrgQuerySet.as_manager()

    class Meta:
        verbose_name = "export"

    def __str__(self):
        return f"Export {self.pk} ({self.format}, {self.status})"

    @property
    def is_expired(self) -> bool:
        from django.utils import timezone

        return self.status == self.Status.EXPIRED or (
            self.expires_at is not None and self.expires_at <= timezone.now())

    @property
    def is_downloadable(self) -> bool:
        return self.status == self.Status.SUCCEEDED and not self.is_expired and bool(self.file)

    @property
    def progress_percent(self) -> int | None:
        if self.status in (self.Status.SUCCEEDED, self.Status.EXPIRED):
            return 100
        if not self.rows_total:
            return None
        return min(100, self.rows_done * 100 // self.rows_total)
