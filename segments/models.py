"""Static lists (ContactList + ListMembership) and dynamic segments (Segment: saved rules).

Membership writes go through segments.services; a segment's members are computed by
segments.rules.compile_rules every time they are asked for (a contact that starts matching is a
member at once), so nothing about a segment's members is stored.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from contacts.models import Contact
from contacts_crm.models import Organization
from contacts_crm.tenancy import OrgQuerySet


def empty_rules() -> dict:
    return {"op": "and", "rules": []}


class ContactList(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="contact_lists")
    name = models.CharField(max_length=200, help_text="Unique within the organization.")
    description = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    contacts = models.ManyToManyField(Contact, through="ListMembership", related_name="lists", blank=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "list"
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="list_unique_name_per_org")]

    def __str__(self):
        return self.name


class ListMembership(models.Model):
    id = models.BigAutoField(primary_key=True)
    list = models.ForeignKey(ContactList, on_delete=models.CASCADE, related_name="memberships")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="list_memberships")
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["list", "contact"], name="list_membership_unique")]
        indexes = [
            # "Lists of contact Y" and the EXISTS probe of list filters/rules (contact first).
            models.Index(fields=["contact", "list"], name="list_membership_by_contact"),
            # "Members of list X" in the order they were added (keyset paging on added_at, id).
            models.Index(fields=["list", "added_at", "id"], name="list_membership_by_added"),
        ]

    def __str__(self):
        return f"{self.contact_id} in list {self.list_id}"


class Segment(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="segments")
    name = models.CharField(max_length=200, help_text="Unique within the organization.")
    description = models.TextField(blank=True, default="")
    rules = models.JSONField(
        default=empty_rules,
        help_text='Nested rules, e.g. {"op": "and", "rules": [{"field": "state", "operator": "in", '
        '"value": ["NC", "SC"]}]}. See docs/segments.md.',
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="segment_unique_name_per_org")]

    def __str__(self):
        return self.name

    def contacts(self):
        """The segment's members now: a Contact queryset (one query when evaluated, no Python filtering)."""
        from .rules import segment_contacts

        return segment_contacts(self)
