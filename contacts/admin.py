"""The contacts admin: staff's view of one organization's contacts, tags and custom fields.

Reads use the ContactQuerySet methods the API uses (search, tags, textable...), and every write
goes through contacts.services with `Actor(user=request.user, source="admin")`, so the timeline
records who did what from the admin. Tenancy comes from OrgScopedAdmin.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import model_ngettext
from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db import connection, transaction
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join

from contacts_crm.admin_mixins import OrgScopedAdmin
from contacts_crm.tenancy import user_organization
from segments.admin import ListListFilter, SegmentListFilter, add_to_list

from . import services
from .admin_merge import merge_contacts  # apiparity: the merge action lives in its own module
from .export_views import export_matching_view, export_selected, export_selected_vcf, export_selected_xlsx
from .forms import ContactAdminForm, CustomFieldAdminForm, TagAdminForm, contact_admin_link
from .models import ChannelPreference, Contact, ContactEvent, CustomField, Tag
from .normalize import NormalizationError, normalize_tag

# Tag and opt-out actions call the per-contact services (each writes its own event, ~5 queries a
# contact); more than this in one request would outlast the browser's patience.
ACTION_MAX_CONTACTS = 2000
FILTER_MAX_CHOICES = 200
TIMELINE_LENGTH = 50


def admin_actor(request) -> services.Actor:
    return services.Actor(user=request.user, source="admin")


# --- paging without counting a million rows --------------------------------------------------
class EstimatedCountPaginator(Paginator):
    """A paginator that never counts all of a large result: PostgreSQL's planner estimate instead.

    PostgreSQL: one EXPLAIN gives the estimate E. A small E is checked with an exact count capped
    at `exact_limit` rows; a large E with a count capped at `sanity_limit` rows (so a wildly
    wrong estimate for a handful of rows still shows the exact handful). Past those caps the
    count is an estimate: `estimated` makes the template say "about", and pages past an
    underestimated end are empty rather than an error. Cost: one EXPLAIN plus reading at most
    `exact_limit` matching rows, instead of a COUNT(*) of every match on every page load.
    SQLite (the embedded, small-data database) counts exactly, as Django does.
    """

    exact_limit = 10_000
    sanity_limit = 250

    @cached_property
    def count(self):
        self.estimated = False
        queryset = self.object_list.order_by()
        if connection.vendor != "postgresql":
            return queryset.count()
        estimate = planner_row_estimate(queryset)
        cap = self.exact_limit if estimate <= self.exact_limit else self.sanity_limit
        capped = queryset[: cap + 1].count()
        if capped <= cap:
            return capped
        self.estimated = True
        return max(estimate, capped)

    def validate_number(self, number):
        if not self.count or not getattr(self, "estimated", False):
            return super().validate_number(number)
        try:
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger("That page number is not an integer") from None
        if number < 1:
            raise EmptyPage("That page number is less than 1")
        return number

    def page(self, number):
        number = self.validate_number(number)
        if not getattr(self, "estimated", False):
            return super().page(number)
        bottom = (number - 1) * self.per_page
        return Page(self.object_list[bottom : bottom + self.per_page], number, self)


def planner_row_estimate(queryset) -> int:
    """PostgreSQL's estimate of the rows `queryset` returns (one EXPLAIN, no scan)."""
    plan = json.loads(queryset.values("pk").explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


def distinct_values(queryset, field: str, org=None, limit: int = FILTER_MAX_CHOICES) -> list[str]:
    """The distinct non-empty values of `field`, sorted, at most `limit`.

    On PostgreSQL, with an organization, a recursive "skip scan" over the (organization, field,
    ...) index: one index probe per distinct value (~1 ms for 60 states among a million rows,
    where SELECT DISTINCT reads the whole index). Elsewhere a plain DISTINCT.
    """
    if org is not None and connection.vendor == "postgresql":
        table, column = Contact._meta.db_table, Contact._meta.get_field(field).column
        sql = f"""
            WITH RECURSIVE v(value) AS (
                (SELECT {column} FROM {table} WHERE organization_id = %s AND {column} > ''
                 ORDER BY {column} LIMIT 1)
                UNION ALL
                SELECT (SELECT {column} FROM {table} WHERE organization_id = %s AND {column} > v.value
                        ORDER BY {column} LIMIT 1)
                FROM v WHERE v.value IS NOT NULL
            )
            SELECT value FROM v WHERE value IS NOT NULL LIMIT %s
        """
        with connection.cursor() as cursor:
            cursor.execute(sql, [org.pk, org.pk, limit])
            return [row[0] for row in cursor.fetchall()]
    values = queryset.exclude(**{field: ""}).order_by(field).values_list(field, flat=True).distinct()
    return list(values[:limit])


def _filter_org(request, model_admin):
    """The organization whose choices a filter offers: the user's, or a superuser's pick."""
    org = user_organization(request.user)
    if org is None and request.user.is_superuser:
        from contacts_crm.models import Organization

        picked = request.GET.get("organization__id__exact")
        org = Organization.objects.filter(pk=picked).first() if picked and picked.isdigit() else None
    return org


# --- changelist filters (each applies one ContactQuerySet method) ------------------------------
class TagFilter(admin.SimpleListFilter):
    title = "tag"
    parameter_name = "tag"

    def lookups(self, request, model_admin):
        org = _filter_org(request, model_admin)
        tags = Tag.objects.for_org(org) if org is not None else Tag.objects.none()
        return [(t.key, t.name) for t in tags.order_by("key")[:FILTER_MAX_CHOICES]]

    def queryset(self, request, queryset):
        return queryset.tagged_any([self.value()]) if self.value() else queryset


class TextableFilter(admin.SimpleListFilter):
    title = "textable"
    parameter_name = "textable"

    def lookups(self, request, model_admin):
        return [("true", "Yes"), ("false", "No"), ("unknown", "Unknown")]

    def queryset(self, request, queryset):
        return queryset.textable(self.value()) if self.value() in {"true", "false", "unknown"} else queryset


class _PresenceFilter(admin.SimpleListFilter):
    method = ""

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() not in {"yes", "no"}:
            return queryset
        return getattr(queryset, self.method)(self.value() == "yes")


class HasEmailFilter(_PresenceFilter):
    title, parameter_name, method = "has email", "has_email", "with_email"


class HasPhoneFilter(_PresenceFilter):
    title, parameter_name, method = "has phone", "has_phone", "with_phone"


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        org = _filter_org(request, model_admin)
        queryset = Contact.objects.for_org(org) if org is not None else Contact.objects.all()
        return [(value, value) for value in distinct_values(queryset, "state", org)]

    def queryset(self, request, queryset):
        return queryset.in_state([self.value()]) if self.value() else queryset


class LifecycleStageFilter(admin.SimpleListFilter):
    title = "lifecycle stage"
    parameter_name = "lifecycle_stage"

    def lookups(self, request, model_admin):
        org = _filter_org(request, model_admin)
        queryset = Contact.objects.for_org(org) if org is not None else Contact.objects.all()
        return [(value, value) for value in distinct_values(queryset, "lifecycle_stage", org)]

    def queryset(self, request, queryset):
        return queryset.filter(lifecycle_stage=self.value()) if self.value() else queryset


# --- inline and action forms -----------------------------------------------------------------
class ChannelPreferenceInline(admin.TabularInline):
    """Per-channel consent. Saved through contact_set_preferences (ContactAdmin.save_formset):
    deleting a row opts the contact back in on that channel, as "no row means opted in"."""

    model = ChannelPreference
    fields = ["channel", "opted_in", "changed_at", "source"]
    readonly_fields = ["changed_at", "source"]
    extra = 0
    verbose_name = "channel preference"
    verbose_name_plural = "Channel preferences (no row = opted in; delete a row to opt back in)"

    # Inlines check Django's per-model permissions, which staff do not hold: whoever may change
    # the contact (OrgScopedAdmin's role rules) may change its consent.
    def _contact_admin(self):
        return self.admin_site._registry[Contact]

    def has_view_permission(self, request, obj=None):
        return self._contact_admin().has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return self._contact_admin().has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._contact_admin().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._contact_admin().has_change_permission(request, obj)


class TagActionForm(forms.Form):
    tag = forms.CharField(max_length=64, widget=forms.TextInput(attrs={"list": "org-tags", "autofocus": True}))

    def clean_tag(self):
        try:
            return normalize_tag(self.cleaned_data["tag"])
        except NormalizationError as exc:
            raise forms.ValidationError(str(exc)) from None


# --- contacts --------------------------------------------------------------------------------
@admin.register(Contact)
class ContactAdmin(OrgScopedAdmin):
    form = ContactAdminForm
    inlines = [ChannelPreferenceInline]
    member_can_delete = False

    list_display = ["name", "phone", "email", "tag_names", "textable", "opted_out_badge", "updated"]
    list_display_links = ["name"]
    list_filter = [
        TagFilter, ListListFilter, SegmentListFilter, "opted_out", TextableFilter, StateFilter, LifecycleStageFilter,
        HasEmailFilter, HasPhoneFilter,
    ]
    # The search box appears when search_fields is set; get_search_results does the searching.
    search_fields = ["phone"]
    search_help_text = "Names, email or phone digits (a one-letter typo in a name still matches on PostgreSQL)."
    ordering = ["-updated_at"]
    # Only orders the (organization, ...) indexes serve; sorting a million rows by name would not be.
    sortable_by = ["phone", "updated"]
    list_per_page = 50
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = ["add_tag", "remove_tag", add_to_list, "opt_out", "delete_contacts", export_selected,
               export_selected_xlsx, export_selected_vcf, merge_contacts]

    def get_urls(self):
        # Before Django's own: <path:object_id>/ would take "export/" for a contact id.
        return [path("export/", self.admin_site.admin_view(self.export_matching), name="contacts_contact_export"),
                *super().get_urls()]

    def export_matching(self, request):
        """Every contact matching the changelist's current filters and search (not just a page)."""
        return export_matching_view(self, request)

    readonly_fields = [
        "id", "is_textable", "textable_checked_at", "opted_out_at", "opt_out_source", "created_at", "updated_at",
    ]

    # --- changelist ----------------------------------------------------------------------------
    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("tags")

    def get_list_select_related(self, request):
        return ["organization"] if request.user.is_superuser else []

    def get_search_results(self, request, queryset, search_term):
        # The API's search (ContactQuerySet.search), not the admin's icontains over search_fields.
        return queryset.search(search_term), False

    @admin.display(description="name")
    def name(self, obj):
        return format_html('<span style="white-space:nowrap">{}</span>', obj.full_name or "—")

    @admin.display(description="tags")
    def tag_names(self, obj):
        return ", ".join(t.name for t in obj.tags.all())

    @admin.display(description="textable", boolean=True)
    def textable(self, obj):
        return obj.is_textable

    @admin.display(description="opted out")
    def opted_out_badge(self, obj):
        # Only the exception stands out: a red cross on every reachable contact read as an alarm.
        if not obj.opted_out:
            return ""
        return format_html('<strong style="color:var(--error-fg, #ba2121)">{}</strong>', "opted out")

    @admin.display(description="updated", ordering="updated_at")
    def updated(self, obj):
        return format_html('<span style="white-space:nowrap">{}</span>',
                           timezone.localtime(obj.updated_at).strftime("%Y-%m-%d %H:%M"))

    # --- change view ---------------------------------------------------------------------------
    def get_fieldsets(self, request, obj=None):
        identity = ["phone", "email", ("first_name", "last_name"), "display_name", "company", "gender",
                    "birthday", "language", "avatar_url", "external_id", "secondary_phones", "secondary_emails"]
        system = ["id", "created_at", "updated_at"]
        if request.user.is_superuser:
            (identity if obj is None else system).insert(0, "organization")
        fieldsets = [
            ("Identity", {"fields": identity}),
            ("Address", {"fields": ["address", ("city", "state", "zip"), "country", "timezone"]}),
            ("Messaging and consent", {
                "fields": ["opted_out", "opted_out_at", "opt_out_source", "is_textable", "textable_checked_at"],
                "description": "Channel preferences are below. Textability is checked whenever the phone changes.",
            }),
            ("CRM", {"fields": ["lifecycle_stage", "assignee", "tags", "is_test", "notes"]}),
            ("Custom fields", {"fields": ["custom_fields"]}),
        ]
        if obj is not None:
            fieldsets.append(("System", {"fields": system, "classes": ["collapse"]}))
        return fieldsets

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.org = obj.organization if obj is not None else user_organization(request.user)
        assignee = form.base_fields.get("assignee")
        if assignee is not None and form.org is not None:
            # Superusers too: a contact is assigned to a member of its own organization.
            assignee.queryset = assignee.queryset.filter(crm_membership__organization=form.org)
        return form

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The timeline goes below the channel preferences (change_form.html's after_related_objects):
        # it is the longest part of the page and read-only.
        context["timeline"] = self.activity(obj) if obj is not None else None
        context["timeline_length"] = TIMELINE_LENGTH
        return super().render_change_form(request, context, add, change, form_url, obj)

    def activity(self, obj):
        """The last TIMELINE_LENGTH events as an HTML table; one query (actors joined)."""
        events = list(
            obj.events.select_related("actor_user", "actor_api_key")[:TIMELINE_LENGTH]
        ) if obj and obj.pk else []
        if not events:
            return "No activity yet."
        rows = format_html_join(
            "", "<tr><td>{}</td><td><strong>{}</strong></td><td>{}</td><td>{}</td></tr>",
            ((e.created_at.strftime("%Y-%m-%d %H:%M:%S"), e.get_kind_display(), describe_event(e), e.actor_display)
             for e in events),
        )
        return format_html(
            '<table class="contact-timeline"><thead><tr><th>when (UTC)</th><th>what</th><th>details</th>'
            "<th>by</th></tr></thead><tbody>{}</tbody></table>", rows,
        )

    def save_form(self, request, form, change):
        return form.instance  # ContactAdminForm never writes: save_model calls the services

    def save_model(self, request, obj, form, change):
        actor = admin_actor(request)
        if change:
            services.contact_update(contact=obj, data=form.service_data, actor=actor)
        else:
            contact, outcome = services.contact_create_or_merge(org=form.service_org, data=form.service_data,
                                                                actor=actor)
            _become(obj, contact)
            if outcome == "merged":
                self.message_user(request, format_html(
                    "A contact with this phone or email already existed: the values were merged into {}.",
                    contact_admin_link(contact),
                ), messages.WARNING)
        for warning in form.warnings:
            self.message_user(request, warning, messages.WARNING)

    def save_related(self, request, form, formsets, change):
        # No form.save_m2m(): the tags went to the service with the other fields.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request, form, formset, change):
        if formset.model is not ChannelPreference:
            return super().save_formset(request, form, formset, change)
        preferences: dict[str, bool] = {}
        for pref_form in formset.forms:
            if not getattr(pref_form, "cleaned_data", None):
                continue
            old = pref_form.instance if pref_form.instance.pk else None
            if formset._should_delete_form(pref_form):
                if old is not None:
                    preferences[old.channel] = True
                continue
            if old is not None and not pref_form.has_changed():
                continue
            if old is not None and "channel" in pref_form.changed_data:
                preferences[pref_form.initial["channel"]] = True
            preferences[pref_form.cleaned_data["channel"]] = pref_form.cleaned_data["opted_in"]
        if preferences:
            services.contact_set_preferences(contact=formset.instance, preferences=preferences,
                                             actor=admin_actor(request))
        # construct_change_message() reads these; the timeline holds the detail.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except services.ServiceError as exc:
            # The form checks conflicts first; this is a concurrent write that got in between (the
            # transaction rolled back, inlines included).
            self.message_user(request, f"Nothing was saved: {exc.message}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_model(self, request, obj):
        services.contact_delete(contact=obj, actor=admin_actor(request))

    def delete_queryset(self, request, queryset):
        services.contacts_delete_where(queryset)

    def get_deleted_objects(self, objs, request):
        """A summary (the contact, how many events and links go with it) instead of Django's list
        of every related row, which is thousands of lines for a contact with a long timeline."""
        objs = list(objs)
        ids = [o.pk for o in objs]
        summary = {
            "contacts": len(objs),
            "activity events": ContactEvent.objects.filter(contact__in=ids).count(),
            "channel preferences": ChannelPreference.objects.filter(contact__in=ids).count(),
        }
        return [contact_admin_link(o) for o in objs], summary, set(), []

    # --- actions -------------------------------------------------------------------------------
    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # ours goes through contacts_delete_where
        return actions

    def _action_page(self, request, queryset, *, action, title, intro, submit, form=None, danger=False, tags=()):
        select_across = request.POST.get("select_across") == "1"
        return TemplateResponse(request, "admin/contacts/contact/action_confirm.html", {
            **self.admin_site.each_context(request),
            "opts": self.opts, "title": title, "intro": intro, "submit": submit, "form": form,
            "action": action, "danger": danger, "select_across": select_across, "tags": tags,
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "count": queryset.count(), "media": self.media + (form.media if form else forms.Media()),
        })

    def _too_many(self, request, queryset) -> bool:
        count = queryset.count()
        if count > ACTION_MAX_CONTACTS:
            self.message_user(
                request,
                f"{count} contacts are selected; this action handles at most {ACTION_MAX_CONTACTS} at a time "
                "(it records an event per contact). Narrow the selection with a filter, or use the API.",
                messages.ERROR,
            )
            return True
        return False

    def _tag_action(self, request, queryset, *, remove: bool):
        if self._too_many(request, queryset):
            return None
        action = "remove_tag" if remove else "add_tag"
        form = TagActionForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            actor, name, changed = admin_actor(request), form.cleaned_data["tag"], 0
            with transaction.atomic():
                for contact in queryset.select_related("organization").iterator(chunk_size=500):
                    if remove:
                        changed += bool(services.contact_remove_tags(contact=contact, names=[name], actor=actor))
                    else:
                        changed += bool(services.contact_add_tags(contact=contact, names=[name], actor=actor))
            verb = "Removed the tag '{}' from" if remove else "Added the tag '{}' to"
            self.message_user(request, f"{verb.format(name)} {changed} contact(s).", messages.SUCCESS)
            return None
        org = user_organization(request.user)
        tags = Tag.objects.for_org(org).order_by("key").values_list("name", flat=True)[:FILTER_MAX_CHOICES] if org else []
        return self._action_page(
            request, queryset, action=action, form=form, tags=list(tags),
            title="Remove a tag" if remove else "Add a tag",
            intro="Which tag should be removed from" if remove else "Which tag should be added to",
            submit="Remove tag" if remove else "Add tag",
        )

    @admin.action(description="Add a tag to selected contacts", permissions=["change"])
    def add_tag(self, request, queryset):
        return self._tag_action(request, queryset, remove=False)

    @admin.action(description="Remove a tag from selected contacts", permissions=["change"])
    def remove_tag(self, request, queryset):
        return self._tag_action(request, queryset, remove=True)

    @admin.action(description="Opt out selected contacts (all channels)", permissions=["change"])
    def opt_out(self, request, queryset):
        pending = queryset.filter(opted_out=False)
        if self._too_many(request, pending):
            return
        actor, changed = admin_actor(request), 0
        with transaction.atomic():
            for contact in pending.iterator(chunk_size=500):
                changed += services.contact_opt_out(contact=contact, actor=actor)
        self.message_user(request, f"Opted out {changed} contact(s) on every channel.", messages.SUCCESS)

    @admin.action(description="Delete selected contacts", permissions=["delete"])
    def delete_contacts(self, request, queryset):
        if request.POST.get("post") == "yes":
            deleted = services.contacts_delete_where(queryset)
            self.message_user(request, f"Deleted {deleted} {model_ngettext(self.opts, deleted)}.", messages.SUCCESS)
            return None
        return self._action_page(
            request, queryset, action="delete_contacts", danger=True, title="Delete contacts",
            intro="Delete, with their timelines, tags and channel preferences,", submit="Yes, delete them",
        )


def _become(obj: Contact, contact: Contact) -> None:
    """Make the admin's unsaved instance the contact the service saved (created or merged into),
    so the redirect, the log entry and the inlines all point at it."""
    obj.__dict__.update({f.attname: getattr(contact, f.attname) for f in Contact._meta.concrete_fields})
    obj._state.adding = False
    obj._state.db = contact._state.db


def describe_event(event: ContactEvent) -> str:
    """One line of timeline detail: the changed fields, tags, channel or import."""
    data = event.data or {}
    if "changes" in data:
        parts = []
        for field, change in data["changes"].items():
            if isinstance(change, list) and len(change) == 2:
                parts.append(f"{field}: {_short(change[0])} → {_short(change[1])}")
            else:
                parts.append(f"{field}: {_short(change)}")
        return "; ".join(parts)
    if "tags" in data:
        return ", ".join(map(str, data["tags"]))
    if "channel" in data:
        return f"{data['channel'] or 'all channels'} (source: {data.get('source') or '?'})"
    if "fields" in data:
        return "fields: " + ", ".join(data["fields"])
    return _short(data) if data else ""


def _short(value, limit: int = 80) -> str:
    text = "—" if value in (None, "", [], {}) else (value if isinstance(value, str) else json.dumps(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- tags and custom fields ------------------------------------------------------------------
@admin.register(Tag)
class TagAdmin(OrgScopedAdmin):
    form = TagAdminForm
    list_display = ["name", "contact_count", "created_at"]
    search_fields = ["name"]
    fields = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(contact_count=Count("contact_links"))

    def get_fields(self, request, obj=None):
        return ["organization", "name"] if request.user.is_superuser and obj is None else ["name"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.org = obj.organization if obj is not None else user_organization(request.user)
        return form

    @admin.display(description="contacts", ordering="contact_count")
    def contact_count(self, obj):
        return number_format(obj.contact_count, force_grouping=True)


@admin.register(CustomField)
class CustomFieldAdmin(OrgScopedAdmin):
    form = CustomFieldAdminForm
    list_display = ["key", "label", "type", "choice_list", "id"]
    list_filter = ["type"]
    search_fields = ["key", "label"]

    def get_fields(self, request, obj=None):
        fields = ["key", "label", "type", "choices"]
        return ["organization", *fields] if request.user.is_superuser and obj is None else fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.org = obj.organization if obj is not None else user_organization(request.user)
        return form

    @admin.display(description="choices")
    def choice_list(self, obj):
        return ", ".join(map(str, obj.choices or [])) or "—"
