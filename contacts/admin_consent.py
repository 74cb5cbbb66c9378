"""Admin of issue 10 (consent), kept apart from contacts/admin.py's look:

- `ConsentContactAdminMixin` (first base of ContactAdmin): the changelist hides the trash, the
  contact page shows its consent ledger (an inline) and the suppression entries of its phone and
  email, and an "Erase (GDPR)" action for organization admins.
- The Trash (`TrashedContact`), with restore and, for organization admins, purge.
- The suppression list (lift with a kept reason), the consent ledger, keyword settings.

Every write calls contacts.trash / contacts.consent.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from contacts_crm.admin_mixins import OrgScopedAdmin
from contacts_crm.models import Membership
from contacts_crm.tenancy import user_role

from . import consent, services, trash
from .models import ConsentRecord, KeywordSettings, Suppression, TrashedContact

ERASE_MAX_CONTACTS = 100


def _admin_actor(request) -> services.Actor:
    return services.Actor(user=request.user, source="admin")


def is_org_admin(request) -> bool:
    return request.user.is_superuser or user_role(request.user) == Membership.Role.ADMIN


def _confirm_page(model_admin, request, queryset, *, action, title, intro, submit):
    return TemplateResponse(request, "admin/contacts/contact/action_confirm.html", {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts, "title": title, "intro": intro, "submit": submit, "form": None,
        "action": action, "danger": True, "select_across": request.POST.get("select_across") == "1",
        "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME), "count": queryset.count(),
        "media": model_admin.media, "tags": (),
    })


class ConsentRecordInline(admin.TabularInline):
    """The contact's consent ledger, newest first: read-only (rows are append-only)."""

    model = ConsentRecord
    fk_name = "contact"
    extra = 0
    max_num = 0
    can_delete = False
    verbose_name = "consent ledger row"
    verbose_name_plural = "consent ledger (every change of the opt-out and channel preferences)"
    fields = ["created_at", "channel_display", "opted_in", "source", "actor", "evidence"]
    readonly_fields = fields
    ordering = ["-created_at", "-id"]

    @admin.display(description="channel")
    def channel_display(self, obj):
        return obj.channel or "all (global)"

    @admin.display(description="by")
    def actor(self, obj):
        if obj.actor_api_key_id:
            return f"API key {obj.actor_api_key.name}" if obj.actor_api_key else "API key"
        return str(obj.actor_user) if obj.actor_user_id else (obj.actor_label or "system")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor_user", "actor_api_key")

    def has_view_permission(self, request, obj=None):
        # Whoever may see the contact sees its ledger (the organization's role rules, not Django perms).
        from .models import Contact

        return self.admin_site._registry[Contact].has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def suppression_entries_html(contact) -> str:
    """The suppression entries matching the contact's phone and email (by hash)."""
    hashes = [h for _, h in consent.contact_value_hashes(contact)] if contact and contact.pk else []
    entries = list(Suppression.objects.filter(organization_id=contact.organization_id, value_hash__in=hashes)
                   ) if hashes else []
    if not entries:
        return "No suppression entry for this phone or email."
    rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", (
        (e.kind, e.scope if isinstance(e.scope, str) else ", ".join(e.scope), e.since.strftime("%Y-%m-%d %H:%M"),
         e.get_source_display(), "active" if e.lifted_at is None else f"lifted: {e.lift_reason}")
        for e in entries))
    return format_html("<table><thead><tr><th>kind</th><th>scope</th><th>since</th><th>source</th><th>state</th>"
                       "</tr></thead><tbody>{}</tbody></table>", rows)


class ConsentContactAdminMixin:
    """Mixed into ContactAdmin (its first base)."""

    def get_queryset(self, request):
        return super().get_queryset(request).filter(deleted_at__isnull=True)  # the trash has its own page

    def get_inlines(self, request, obj):
        inlines = list(super().get_inlines(request, obj))
        return [*inlines, ConsentRecordInline] if obj is not None else inlines

    def consent_fieldsets(self, obj=None) -> list:
        """Appended to ContactAdmin.get_fieldsets()."""
        if obj is None:
            return []
        return [("Suppression list", {
            "fields": ["suppression_entries"],
            "description": "Entries left by purged or erased contacts with this phone or email.",
        })]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "suppression_entries"]

    @admin.display(description="suppression entries")
    def suppression_entries(self, obj):
        return suppression_entries_html(obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if is_org_admin(request):
            actions["erase_contacts"] = self.get_action("erase_contacts")
        return actions

    @admin.action(description="Erase selected contacts for good (GDPR)")
    def erase_contacts(self, request, queryset):
        if not is_org_admin(request):
            raise PermissionDenied
        count = queryset.count()
        if count > ERASE_MAX_CONTACTS:
            self.message_user(request, f"Erase at most {ERASE_MAX_CONTACTS} contacts at a time.", messages.ERROR)
            return None
        if request.POST.get("post") == "yes":
            actor = _admin_actor(request)
            with transaction.atomic():
                for contact in queryset.select_for_update():
                    trash.contact_erase(contact=contact, actor=actor)
            self.message_user(request, f"Erased {count} contact(s); their phones and emails are suppressed.",
                              messages.SUCCESS)
            return None
        return _confirm_page(self, request, queryset, action="erase_contacts", title="Erase contacts (GDPR)",
                             intro="Erase for good, with their timelines (their phones and emails stay on the "
                             "suppression list),", submit="Yes, erase them")


@admin.register(TrashedContact)
class TrashAdmin(OrgScopedAdmin):
    """Deleted contacts: restore them, or (organization admins) purge them now."""

    list_display = ["name", "phone", "email", "opted_out", "deleted_at", "deleted_by_label"]
    list_display_links = None
    ordering = ["-deleted_at"]
    search_fields = ["phone"]
    list_per_page = 50
    show_full_result_count = False
    actions = ["restore_contacts", "purge_contacts"]

    def get_queryset(self, request):
        return super().get_queryset(request).in_trash()

    def get_search_results(self, request, queryset, search_term):
        return queryset.search(search_term), False

    @admin.display(description="name")
    def name(self, obj):
        return obj.full_name or "—"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return self._allowed(request)  # restore is a change

    def has_delete_permission(self, request, obj=None):
        return False  # purge is its own action, for organization admins

    def has_purge_permission(self, request):
        return self._allowed(request) and is_org_admin(request)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # A trashed contact is read-only: restore it to edit it.
        return self.changeform_view(request, object_id, form_url,
                                    {**(extra_context or {}), "show_save": False, "show_save_and_continue": False})

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.concrete_fields if f.name != "tag_ids"]

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj)

    def save_model(self, request, obj, form, change):
        raise PermissionDenied("Restore the contact to change it.")

    @admin.action(description="Restore selected contacts", permissions=["change"])
    def restore_contacts(self, request, queryset):
        actor, count = _admin_actor(request), 0
        with transaction.atomic():
            for contact in queryset.select_for_update():
                trash.contact_restore(contact=contact, actor=actor)
                count += 1
        self.message_user(request, f"Restored {count} contact(s).", messages.SUCCESS)

    @admin.action(description="Purge selected contacts now (for good)", permissions=["purge"])
    def purge_contacts(self, request, queryset):
        if request.POST.get("post") == "yes":
            actor, count = _admin_actor(request), 0
            with transaction.atomic():
                for contact in queryset.select_for_update():
                    trash.contact_purge(contact=contact, actor=actor)
                    count += 1
            self.message_user(request, f"Purged {count} contact(s); opted-out ones stay on the suppression list.",
                              messages.SUCCESS)
            return None
        return _confirm_page(self, request, queryset, action="purge_contacts", title="Purge contacts",
                             intro="Delete for good, with their timelines,", submit="Yes, purge them")


class SuppressionAdminForm(forms.ModelForm):
    class Meta:
        model = Suppression
        fields = ["lift_reason"]

    def clean_lift_reason(self):
        reason = self.cleaned_data.get("lift_reason", "").strip()
        if self.instance.lifted_at is None and not reason:
            raise forms.ValidationError("Give the reason for lifting this entry (it is kept).")
        return reason


@admin.register(Suppression)
class SuppressionAdmin(OrgScopedAdmin):
    """Hashed phones/emails that stay opted out. Lifting needs a reason, which is kept."""

    form = SuppressionAdminForm
    list_display = ["kind", "scope_display", "since", "source", "state"]
    list_filter = ["kind", "source"]
    ordering = ["-since"]
    readonly_fields = ["kind", "scope_display", "since", "source", "created_at", "lifted_at", "lifted_by"]

    @admin.display(description="scope")
    def scope_display(self, obj):
        return obj.scope if isinstance(obj.scope, str) else ", ".join(obj.scope)

    @admin.display(description="state")
    def state(self, obj):
        return "active" if obj.lifted_at is None else f"lifted {obj.lifted_at:%Y-%m-%d}"

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.lifted_at is not None:
            fields.append("lift_reason")
        return fields

    def has_add_permission(self, request):
        return False  # entries come from purges and erasures

    def has_delete_permission(self, request, obj=None):
        return False  # lifted, never deleted: the reason is kept

    def save_model(self, request, obj, form, change):
        if obj.lifted_at is None:
            consent.suppression_lift(suppression=obj, user=request.user, reason=form.cleaned_data["lift_reason"])


@admin.register(ConsentRecord)
class ConsentRecordAdmin(OrgScopedAdmin):
    """The whole ledger, including rows of purged contacts (kept against the suppression hash)."""

    list_display = ["created_at", "contact", "channel", "opted_in", "source", "actor_label"]
    list_filter = ["source", "opted_in", "channel"]
    ordering = ["-created_at", "-id"]
    list_select_related = ["contact"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.concrete_fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # Every field is read-only (rows are append-only); the page has nothing to save.
        return super().change_view(request, object_id, form_url,
                                   {**(extra_context or {}), "show_save": False, "show_save_and_continue": False,
                                    "show_save_and_add_another": False})

    def save_model(self, request, obj, form, change):
        pass  # append-only: nothing on the page is editable


@admin.register(KeywordSettings)
class KeywordSettingsAdmin(OrgScopedAdmin):
    """Inbound keywords: the organization's own words (added to the defaults) and replies."""

    list_display = ["__str__", "opt_out_words", "opt_in_words"]

    def get_fieldsets(self, request, obj=None):
        defaults = {action: ", ".join(words) for action, words in consent.DEFAULT_KEYWORDS.items()}
        fieldsets = [
            ("Extra keywords", {"fields": ["opt_out_words", "opt_out_all_words", "opt_in_words", "help_words"],
                                "description": format_html(
                                    "Always understood: opt-out <code>{}</code>; every channel <code>{}</code>; "
                                    "opt-in <code>{}</code>; help <code>{}</code>.",
                                    defaults["opted_out"], defaults["opted_out_all"], defaults["opted_in"],
                                    defaults["help"])}),
            ("Replies", {"fields": ["reply_opted_out", "reply_opted_in", "reply_help"],
                         "description": format_html("Defaults: <em>{}</em> / <em>{}</em> / <em>{}</em>",
                                                    *consent.DEFAULT_REPLIES.values())}),
        ]
        if request.user.is_superuser and obj is None:
            fieldsets.insert(0, (None, {"fields": ["organization"]}))
        return fieldsets

    def add_view(self, request, form_url="", extra_context=None):
        # One row per organization: "add" opens the existing one. (Checked here, not in
        # has_add_permission, which every admin page's sidebar calls.)
        from django.http import HttpResponseRedirect
        from django.urls import reverse

        from contacts_crm.tenancy import user_organization

        org = None if request.user.is_superuser else user_organization(request.user)
        existing = KeywordSettings.objects.filter(organization=org).first() if org is not None else None
        if existing is not None:
            return HttpResponseRedirect(reverse("admin:contacts_keywordsettings_change", args=[existing.pk]))
        return super().add_view(request, form_url, extra_context)
