"""The admin's "Merge selected contacts" action (issue 11): pick the contact that stays, see what
it becomes (a dry run of contacts.merging.contacts_merge), confirm."""

from __future__ import annotations

from django.contrib import admin, messages
from django.template.response import TemplateResponse

from .merging import MERGE_MAX, contacts_merge
from .services import Actor, ServiceError

SHOWN_FIELDS = ["first_name", "last_name", "display_name", "company", "phone", "email", "secondary_phones",
                "secondary_emails", "city", "state", "country", "opted_out", "custom_fields"]


@admin.action(description="Merge selected contacts", permissions=["change"])
def merge_contacts(modeladmin, request, queryset):
    contacts = list(queryset.order_by("created_at", "id")[: MERGE_MAX + 2])
    if len(contacts) < 2:
        modeladmin.message_user(request, "Select at least two contacts to merge.", messages.ERROR)
        return None
    if len(contacts) > MERGE_MAX + 1:
        modeladmin.message_user(request, f"Merge at most {MERGE_MAX + 1} contacts at a time.", messages.ERROR)
        return None
    chosen = request.POST.get("survivor")
    survivor = next((c for c in contacts if str(c.pk) == chosen), contacts[0])  # default: the oldest
    others = [c for c in contacts if c.pk != survivor.pk]
    actor = Actor(user=request.user, source="admin")
    try:
        if request.POST.get("post") == "yes":
            result = contacts_merge(survivor=survivor, others=others, actor=actor)
            modeladmin.message_user(request, f"Merged {len(result.merged_ids)} contact(s) into {result.survivor}.",
                                    messages.SUCCESS)
            return None
        preview = contacts_merge(survivor=survivor, others=others, actor=actor, dry_run=True).survivor
    except ServiceError as exc:
        modeladmin.message_user(request, f"These contacts cannot be merged: {exc.message}", messages.ERROR)
        return None
    rows = [(name.replace("_", " ").capitalize(), getattr(preview, name)) for name in SHOWN_FIELDS]
    rows += [("Tags", ", ".join(sorted(t.name for t in preview.tags.all()))),
             ("Lists", ", ".join(str(m.list_id) for m in preview.list_memberships.all())),
             ("Opted out on", ", ".join(p.channel for p in preview.preferences.all() if not p.opted_in))]
    return TemplateResponse(request, "admin/contacts/contact/merge_confirm.html", {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.opts, "title": "Merge contacts", "contacts": contacts, "survivor": survivor,
        "rows": rows, "selected": [str(c.pk) for c in contacts],
    })
