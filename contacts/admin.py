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
from django.db.models.functions import Upper
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.formats import number_format
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join

from contacts_crm.admin_mixins import OrgScopedAdmin, admin_datetime, admin_time_zone_name
from contacts_crm.tenancy import user_organization
from segments.admin import ListListFilter, SegmentListFilter, add_to_list

from . import services
from .admin_consent import ConsentContactAdminMixin  # consent: trash, ledger, suppression, erase
from .admin_merge import merge_contacts  # apiparity: the merge action lives in its own module
from .counting import live_links_count
from .custom_fields import custom_field_indexes_schedule
from .export_views import export_matching_view, export_selected, export_selected_vcf, export_selected_xlsx
from .forms import ContactAdminForm, CustomFieldAdminForm, TagAdminForm, contact_admin_link, display_phone
from .models import ChannelPreference, Contact, ContactEvent, ContactTag, CustomField, ExportJob, Tag
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


# --- facet counts only where they are cheap ---------------------------------------------------
# "Show counts" (Django's show_facets) runs one aggregate over the filtered rows per filter. On a
# million contacts that is a full scan each (bench/README.md), so a filter counts only when the
# planner expects at most FACETS_MAX_ROWS rows to count (one EXPLAIN), and the filters whose
# counts are a subquery per choice (tags, lists, segments, states, stages) never count.
FACETS_MAX_ROWS = 20_000


class _WithoutFacets:
    """The changelist as a filter sees it, with facet counts switched off."""

    add_facets = False

    def __init__(self, changelist):
        self._changelist = changelist

    def __getattr__(self, name):
        return getattr(self._changelist, name)


class CheapFacetsMixin:
    never_count = False

    def choices(self, changelist):
        if changelist.add_facets and not self._facets_are_cheap(changelist):
            changelist = _WithoutFacets(changelist)
        return super().choices(changelist)

    def _facets_are_cheap(self, changelist) -> bool:
        if self.never_count:
            return False
        if connection.vendor != "postgresql":
            return True
        rows = changelist.get_queryset(self.request, exclude_parameters=self.expected_parameters())
        return planner_row_estimate(rows) <= FACETS_MAX_ROWS


class NoFacetsFilter(CheapFacetsMixin, admin.SimpleListFilter):
    never_count = True


class OptedOutFilter(CheapFacetsMixin, admin.BooleanFieldListFilter):
    pass


class DateFilter(CheapFacetsMixin, admin.DateFieldListFilter):
    pass


# --- changelist filters (each applies one ContactQuerySet method) ------------------------------
class TagFilter(NoFacetsFilter):
    title = "tag"
    parameter_name = "tag"

    def lookups(self, request, model_admin):
        org = _filter_org(request, model_admin)
        tags = Tag.objects.for_org(org) if org is not None else Tag.objects.none()
        return [(t.key, t.name) for t in tags.order_by("key")[:FILTER_MAX_CHOICES]]

    def queryset(self, request, queryset):
        return queryset.tagged_any([self.value()]) if self.value() else queryset


class TextableFilter(CheapFacetsMixin, admin.SimpleListFilter):
    title = "textable"
    parameter_name = "textable"

    def lookups(self, request, model_admin):
        return [("true", "Yes"), ("false", "No"), ("unknown", "Unknown")]

    def queryset(self, request, queryset):
        return queryset.textable(self.value()) if self.value() in {"true", "false", "unknown"} else queryset


class _PresenceFilter(CheapFacetsMixin, admin.SimpleListFilter):
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


class StateFilter(NoFacetsFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        org = _filter_org(request, model_admin)
        queryset = Contact.objects.for_org(org) if org is not None else Contact.objects.all()
        return [(value, value) for value in distinct_values(queryset, "state", org)]

    def queryset(self, request, queryset):
        return queryset.in_state([self.value()]) if self.value() else queryset


class LifecycleStageFilter(NoFacetsFilter):
    title = "lifecycle stage"
    parameter_name = "lifecycle_stage"

    def lookups(self, request, model_admin):
        org = _filter_org(request, model_admin)
        queryset = Contact.objects.for_org(org) if org is not None else Contact.objects.all()
        return [(value, value) for value in distinct_values(queryset, "lifecycle_stage", org)]

    def queryset(self, request, queryset):
        return queryset.filter(lifecycle_stage=self.value()) if self.value() else queryset


class ListNoFacets(CheapFacetsMixin, ListListFilter):
    never_count = True


class SegmentNoFacets(CheapFacetsMixin, SegmentListFilter):
    never_count = True


# --- action forms ---------------------------------------------------------------------------
class TagActionForm(forms.Form):
    tag = forms.CharField(max_length=64, widget=forms.TextInput(attrs={"list": "org-tags", "autofocus": True}))

    def clean_tag(self):
        try:
            return normalize_tag(self.cleaned_data["tag"])
        except NormalizationError as exc:
            raise forms.ValidationError(str(exc)) from None


# --- contacts --------------------------------------------------------------------------------
@admin.register(Contact)
class ContactAdmin(ConsentContactAdminMixin, OrgScopedAdmin):
    form = ContactAdminForm
    member_can_delete = False
    save_on_top = True
    empty_value_display = ""  # a dash in every empty cell drowned the opted-out ones

    list_display = ["name", "phone_display", "email_display", "tag_names", "textable", "opted_out_badge", "updated"]
    list_display_links = ["name"]
    list_filter = [
        TagFilter, ListNoFacets, SegmentNoFacets, ("opted_out", OptedOutFilter), TextableFilter, StateFilter,
        LifecycleStageFilter, HasEmailFilter, HasPhoneFilter, ("created_at", DateFilter), ("updated_at", DateFilter),
    ]
    date_hierarchy = "created_at"
    # The search box appears when search_fields is set; get_search_results does the searching.
    search_fields = ["phone"]
    search_help_text = "Names, email or phone digits (a one-letter typo in a name still matches on PostgreSQL)."
    ordering = ["-updated_at"]
    # Only orders an (organization, ...) index serves: Upper(last_name), email_key, updated_at.
    sortable_by = ["name", "phone_display", "email_display", "updated"]
    list_per_page = 50
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    # Counts on request ("Show counts"), and only for the filters that answer from an index or a
    # few rows (CheapFacetsMixin, bench/README.md); never on every page load.
    show_facets = admin.ShowFacets.ALLOW
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
        "id", "is_textable", "textable_checked_at_display", "opted_out_at_display", "opt_out_source",
        "created_at_display", "updated_at_display",
    ]

    # --- changelist ----------------------------------------------------------------------------
    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("tags")

    def get_list_select_related(self, request):
        # The organization's region decides how phones read (a join on its primary key).
        return ["organization"]

    def get_search_results(self, request, queryset, search_term):
        # The API's search (ContactQuerySet.search), not the admin's icontains over search_fields.
        return queryset.search(search_term), False

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {
            "time_zone_name": admin_time_zone_name(), **(extra_context or {})})

    @admin.display(description="name", ordering=Upper("last_name"))
    def name(self, obj):
        if obj.full_name:
            return obj.full_name
        return format_html('<span class="nameless">{}</span>', "(no name)")

    @admin.display(description="phone", ordering="phone")
    def phone_display(self, obj):
        return display_phone(obj.phone, obj.organization.default_region)

    @admin.display(description="email", ordering="email_key")
    def email_display(self, obj):
        return obj.email or ""

    @admin.display(description="tags")
    def tag_names(self, obj):
        names = [t.name for t in obj.tags.all()]
        if len(names) <= 3:
            return ", ".join(names)
        return format_html('<span title="{}">{}, +{}</span>', ", ".join(names), ", ".join(names[:3]), len(names) - 3)

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
        return format_html('<span style="white-space:nowrap">{}</span>', admin_datetime(obj.updated_at))

    @admin.display(description="created at")
    def created_at_display(self, obj):
        return admin_datetime(obj.created_at)

    @admin.display(description="updated at")
    def updated_at_display(self, obj):
        return admin_datetime(obj.updated_at)

    @admin.display(description="opted out at")
    def opted_out_at_display(self, obj):
        return admin_datetime(obj.opted_out_at)

    @admin.display(description="textable checked at")
    def textable_checked_at_display(self, obj):
        return admin_datetime(obj.textable_checked_at)

    # --- change view ---------------------------------------------------------------------------
    def _form_class(self, request, obj=None):
        """ContactAdminForm with this organization's custom-field inputs (built once a request)."""
        org = obj.organization if obj is not None else user_organization(request.user)
        cache = request.__dict__.setdefault("_contact_form_classes", {})
        key = org.pk if org is not None else None
        if key not in cache:
            cache[key] = ContactAdminForm.for_org(org, admin_site=self.admin_site)
        return cache[key]

    def get_fieldsets(self, request, obj=None):
        form = self._form_class(request, obj)
        identity = [("phone", "email"), ("first_name", "last_name"), ("display_name", "company"),
                    ("gender", "birthday", "language"), ("avatar_url", "external_id"),
                    ("secondary_phones", "secondary_emails")]
        system = ["id", ("created_at_display", "updated_at_display")]
        if request.user.is_superuser:
            (identity if obj is None else system).insert(0, "organization")
        prefs = form.preference_names()
        consent = ["opted_out", *prefs]
        custom = form.custom_field_names()
        if obj is not None:
            consent += [("opted_out_at_display", "opt_out_source"), ("is_textable", "textable_checked_at_display")]
        fieldsets = [
            ("Identity", {"fields": identity}),
            ("Address", {"fields": ["address", ("city", "state", "zip"), ("country", "timezone")]}),
            ("Consent", {
                "fields": consent,
                "description": "One control per channel. Textability is checked whenever the phone changes.",
            }),
            ("CRM", {"fields": [("lifecycle_stage", "assignee", "is_test"), ("tags", "new_tags"), "notes"]}),
            ("Custom fields", {"fields": [*[tuple(custom[i:i + 2]) for i in range(0, len(custom), 2)], "custom_fields"],
                               "description": "Defined fields have typed inputs; define more under Custom fields."}),
        ]
        if obj is not None:
            fieldsets.append(("System", {"fields": system, "classes": ["collapse"]}))
        fieldsets += self.consent_fieldsets(obj)  # consent: the suppression entries (admin_consent.py)
        return fieldsets

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs.setdefault("form", self._form_class(request, obj))
        form = super().get_form(request, obj, change=change, **kwargs)
        assignee = form.base_fields.get("assignee")
        if assignee is not None and form.org is not None:
            # Superusers too: a contact is assigned to a member of its own organization.
            assignee.queryset = assignee.queryset.filter(crm_membership__organization=form.org)
        return form

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The timeline goes below the form (change_form.html's after_related_objects): it is the
        # longest part of the page and read-only.
        context["timeline"] = self.activity(obj) if obj is not None else None
        context["timeline_length"] = TIMELINE_LENGTH
        context["time_zone_name"] = admin_time_zone_name()
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
            ((admin_datetime(e.created_at), e.get_kind_display(), describe_event(e), e.actor_display)
             for e in events),
        )
        return format_html(
            '<table class="contact-timeline"><thead><tr><th>when ({})</th><th>what</th><th>details</th>'
            "<th>by</th></tr></thead><tbody>{}</tbody></table>", admin_time_zone_name(), rows,
        )

    def save_form(self, request, form, change):
        return form.instance  # ContactAdminForm never writes: save_model calls the services

    def save_model(self, request, obj, form, change):
        actor = admin_actor(request)
        outcome = "updated"
        if change:
            services.contact_update(contact=obj, data=form.service_data, actor=actor)
        elif form.merge_target is not None:
            # The user pressed "Merge into …" on the duplicate error: the one merge rule decides.
            contact, outcome = services.contact_create_or_merge(org=form.service_org, data=form.service_data,
                                                                actor=actor)
            _become(obj, contact)
            obj._merged = outcome == "merged"
        else:
            # A phone or email of a trashed contact restores it (contacts.trash): it is not a
            # duplicate, the person's consent comes back exactly as it was.
            contact, outcome = services.contact_create_or_restore(org=form.service_org, data=form.service_data,
                                                                  actor=actor)
            _become(obj, contact)
        if outcome == "restored":
            self.message_user(request, format_html(
                "A deleted contact with this phone or email was restored and the values merged into {}.",
                contact_admin_link(contact),
            ), messages.WARNING)
        for warning in form.warnings:
            self.message_user(request, warning, messages.WARNING)

    def save_related(self, request, form, formsets, change):
        # Tags and preferences went to the service with the other fields; the inlines left (the
        # consent ledger) are read-only, so they saved nothing for the change message to list.
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def log_addition(self, request, obj, message):
        if getattr(obj, "_merged", False):
            return self.log_change(request, obj, [{"changed": {"fields": ["merged from the add form"]}}])
        return super().log_addition(request, obj, message)

    def response_add(self, request, obj, post_url_continue=None):
        if getattr(obj, "_merged", False):
            self.message_user(request, format_html("The values were merged into {}.", contact_admin_link(obj)),
                              messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:contacts_contact_change", args=[obj.pk]))
        return super().response_add(request, obj, post_url_continue)

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
        from .trash import contacts_trash_where  # consent: delete means trash

        contacts_trash_where(queryset, actor=admin_actor(request))

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
            from .trash import contacts_trash_where  # consent: delete means trash

            deleted = contacts_trash_where(queryset, actor=admin_actor(request))
            self.message_user(request, f"Moved {deleted} {model_ngettext(self.opts, deleted)} to the trash.",
                              messages.SUCCESS)
            return None
        return self._action_page(
            request, queryset, action="delete_contacts", danger=True, title="Delete contacts",
            intro="Move to the trash (restorable until purged; consent is kept)", submit="Yes, delete them",
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
        qs = super().get_queryset(request)
        if request.resolver_match is not None and request.resolver_match.url_name == "autocomplete":
            return qs  # the contact page's tag picker needs names, not a count of every tag's links
        return qs.annotate(contact_count=live_links_count(ContactTag, "tag"))

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

    # The definition's expression index follows it (contacts.custom_fields), as in the API.
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        custom_field_indexes_schedule(org_id=obj.organization_id)

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        custom_field_indexes_schedule(org_id=obj.organization_id)

    def delete_queryset(self, request, queryset):
        org_ids = set(queryset.values_list("organization_id", flat=True))
        super().delete_queryset(request, queryset)
        for org_id in org_ids:
            custom_field_indexes_schedule(org_id=org_id)


# --- background exports (issue 14) -------------------------------------------------------------
@admin.register(ExportJob)
class ExportJobAdmin(OrgScopedAdmin):
    """Exports the contacts list started in the background (over EXPORT_STREAM_MAX_ROWS) and
    those of the API: their progress and, while the link is valid, the file."""

    list_display = ["__str__", "format", "status", "progress", "rows", "created", "expires", "download_link"]
    list_filter = ["status", "format"]
    readonly_fields = ["format", "status", "progress", "rows", "params", "admin_query", "error", "created",
                       "started_at", "finished_at", "expires", "download_link"]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False  # the contacts list's export actions and the API start exports

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the purge deletes expired files and keeps the row

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not (str(object_id).isdigit() and self.get_queryset(request).filter(pk=object_id).exists()):
            # A POST to a view-only page is a 403 before Django looks the object up: answer another
            # organization's export as missing, as every other admin page does.
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, str(object_id))
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [path("<int:pk>/download/", self.admin_site.admin_view(self.download_view),
                     name="contacts_exportjob_download"), *super().get_urls()]

    def download_view(self, request, pk):
        from django.http import Http404

        from .export_job_views import export_download_response
        from .export_jobs import ExportExpired, ExportNotReady

        job = self.get_queryset(request).filter(pk=pk).first()
        if job is None or not self.has_view_permission(request, job):
            raise Http404("No such export.")
        try:
            return export_download_response(job)
        except (ExportExpired, ExportNotReady) as exc:
            self.message_user(request, str(exc), messages.WARNING)
            return HttpResponseRedirect(reverse("admin:contacts_exportjob_changelist"))

    @admin.display(description="Progress")
    def progress(self, job):
        percent = job.progress_percent
        return "" if percent is None else f"{percent}%"

    @admin.display(description="Contacts")
    def rows(self, job):
        done = number_format(job.rows_done, force_grouping=True)
        return done if job.rows_total is None else f"{done} / {number_format(job.rows_total, force_grouping=True)}"

    @admin.display(description="Created", ordering="created_at")
    def created(self, job):
        return admin_datetime(job.created_at)

    @admin.display(description="Link expires", ordering="expires_at")
    def expires(self, job):
        return admin_datetime(job.expires_at)

    @admin.display(description="File")
    def download_link(self, job):
        if not job.is_downloadable:
            return ""
        return format_html('<a href="{}">Download</a>', reverse("admin:contacts_exportjob_download", args=[job.pk]))
