"""Lists and segments in the admin, plus pieces for the contacts changelist: SegmentListFilter,
ListListFilter and the `add_to_list` action (wired into ContactAdmin by contacts/admin.py)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from contacts.counting import live_links_count
from contacts.services import Actor, ServiceError
from contacts.validation import BoundedJSONDecoder, JSONInputError, loads_json
from contacts_crm.admin_mixins import OrgScopedAdmin, admin_datetime
from contacts_crm.tenancy import user_organization

from .models import ContactList, ListMembership, Segment
from .querysets import q_member_of
from .rules import (
    CHANNEL_SPEC,
    CUSTOM_SPEC,
    CUSTOM_TYPE_OPS,
    FIELDS,
    MAX_DEPTH,
    NO_VALUE_OPS,
    RuleError,
    compile_rules,
    validate_rules,
)
from .services import list_add_queryset

RULES_EXAMPLE = {
    "op": "and",
    "rules": [
        {"field": "tags", "operator": "contains_any", "value": ["vip"]},
        {"field": "state", "operator": "in", "value": ["NC", "SC"]},
        {"field": "channel.sms", "operator": "eq", "value": True},
    ],
}


def _contacts_changelist_url(**params) -> str | None:
    """The contacts changelist filtered by `params`, or None while contacts has no admin."""
    try:
        return reverse("admin:contacts_contact_changelist") + "?" + urlencode(params)
    except NoReverseMatch:
        return None


def admin_actor(request) -> Actor:
    return Actor(user=request.user, source="admin")


class _OrgForm(forms.ModelForm):
    """A ModelForm that knows the organization (the unique-name constraints involve it, and it is
    not a form field for staff users)."""

    org = None  # set by _OrgFormAdmin.get_form

    def clean(self):
        cleaned = super().clean()
        org = self.org or cleaned.get("organization") or getattr(self.instance, "organization", None)
        name = (cleaned.get("name") or "").strip()
        model = self._meta.model
        if org is not None and name:
            if model.objects.for_org(org).filter(name=name).exclude(pk=self.instance.pk).exists():
                self.add_error("name", f"A {model._meta.verbose_name} named '{name}' already exists.")
        return cleaned


class _OrgFormAdmin(OrgScopedAdmin):
    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        org = obj.organization if obj is not None else user_organization(request.user)
        return type(form.__name__, (form,), {"org": org})


# --- lists -------------------------------------------------------------------------------------
class ContactListAdminForm(_OrgForm):
    class Meta:
        model = ContactList
        fields = ["name", "description"]


@admin.register(ContactList)
class ContactListAdmin(_OrgFormAdmin):
    form = ContactListAdminForm
    list_display = ["name", "member_count", "description", "created_at"]
    search_fields = ["name", "description"]
    fields = ["name", "description", "member_count", "show_contacts", "created_at"]
    readonly_fields = ["member_count", "show_contacts", "created_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_member_count=live_links_count(ListMembership, "list"))

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if request.user.is_superuser and obj is None:
            fields.insert(0, "organization")
        return fields

    @admin.display(description="Members", ordering="_member_count")
    def member_count(self, obj):
        return getattr(obj, "_member_count", None) if obj.pk else 0

    @admin.display(description="Contacts")
    def show_contacts(self, obj):
        url = _contacts_changelist_url(list=obj.pk) if obj.pk else None
        return format_html('<a href="{}">Show these contacts</a>', url) if url else "—"

    def delete_queryset(self, request, queryset):
        # Memberships go with their lists (one DELETE); contacts are never deleted with a list.
        from .services import list_delete

        for contact_list in queryset:
            list_delete(contact_list=contact_list)


# --- segments ----------------------------------------------------------------------------------
def rule_vocabulary(org) -> dict:
    """What the rule builder offers, straight from segments.rules (one vocabulary): each field's
    kind and operators, the channels and the organization's custom fields with their types."""
    from contacts.models import Channel, CustomField

    fields = [{"name": name, "kind": spec.kind, "ops": list(spec.ops)} for name, spec in FIELDS.items()]
    fields += [{"name": f"channel.{c}", "label": f"channel: {label}", "kind": "channel", "ops": list(CHANNEL_SPEC.ops)}
               for c, label in Channel.choices]
    definitions = CustomField.objects.for_org(org) if org is not None else []
    for d in definitions:
        fields.append({"name": f"custom.{d.key}", "label": f"custom: {d.label or d.key}", "kind": "custom",
                       "type": d.type, "choices": d.choices or [],
                       "ops": list(CUSTOM_TYPE_OPS.get(d.type, CUSTOM_SPEC.ops))})
    return {"fields": fields, "no_value_ops": list(NO_VALUE_OPS), "limits": {"depth": MAX_DEPTH}}


class RuleBuilderWidget(forms.Textarea):
    """The rules as rows of field / operator / value in and/or groups, with "not", and the JSON
    beside them for power users. Plain JavaScript (segments/static/segments/rule_builder.js, no
    build step, no CDN); the live count comes from POST /api/v1/segments/preview."""

    template_name = "admin/segments/rule_builder.html"

    class Media:
        js = ["segments/rule_builder.js"]
        css = {"all": ["segments/rule_builder.css"]}

    def __init__(self, attrs=None, *, org=None):
        self.org = org
        super().__init__(attrs={"rows": 14, "cols": 90, "style": "font-family: monospace", "spellcheck": "false",
                                **(attrs or {})})

    def format_value(self, value):
        if isinstance(value, str):
            try:
                value = loads_json(value)  # bounded: a string nested 1,000 deep is shown as typed
            except ValueError:
                return value
        return json.dumps(value, indent=2, ensure_ascii=False)

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["vocabulary"] = rule_vocabulary(self.org)
        context["preview_url"] = reverse("segment-preview")
        context["vocabulary_id"] = f"{context['widget']['attrs'].get('id', name)}-vocabulary"
        return context


def parse_rules_json(text: str):
    """The rules from the JSON text; a syntax error names its line and column."""
    try:
        return loads_json(text)  # bounded: depth, non-finite and huge numbers (contacts.validation)
    except JSONInputError as exc:
        raise forms.ValidationError(str(exc)) from None
    except json.JSONDecodeError as exc:
        raise forms.ValidationError(
            f"The rules are not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from None


class BoundedJSONFormField(forms.JSONField):
    """forms.JSONField through contacts.validation's bounded decoder, with its message."""

    def __init__(self, **kwargs):
        super().__init__(decoder=BoundedJSONDecoder, **kwargs)

    def to_python(self, value):
        if isinstance(value, str) and not self.disabled:
            try:
                loads_json(value)  # Django's own field says only "Enter a valid JSON."
            except JSONInputError as exc:
                raise forms.ValidationError(str(exc)) from None
            except ValueError:
                pass
        return super().to_python(value)


class SegmentAdminForm(_OrgForm):
    rules = forms.CharField(
        widget=RuleBuilderWidget, initial=json.dumps(RULES_EXAMPLE),
        help_text=mark_safe(  # a constant
            'Build the rules above, or edit the JSON: groups <code>{"op": "and"|"or", "rules": [...]}</code>, '
            'negation <code>{"not": {...}}</code>, conditions <code>{"field", "operator", "value"}</code>. '
            "See docs/segments.md."),
    )

    class Meta:
        model = Segment
        fields = ["name", "description", "rules"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2, "cols": 80})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        org = self.org or (self.instance.organization if self.instance.organization_id else None)
        self.fields["rules"].widget.org = org
        if not self.instance._state.adding:
            self.initial["rules"] = json.dumps(self.instance.rules)

    def clean_rules(self):
        return parse_rules_json(self.cleaned_data.get("rules") or "")

    def clean(self):
        cleaned = super().clean()
        org = self.org or cleaned.get("organization") or getattr(self.instance, "organization", None)
        if "rules" in cleaned:
            try:
                validate_rules(cleaned["rules"], org=org)
            except RuleError as exc:
                self.add_error("rules", str(exc))
        return cleaned


SEGMENT_COUNT_CACHE_SECONDS = 300


def segment_member_counts(segments) -> dict[int, int | None]:
    """{segment id: members now, or None for invalid rules}, for a page of segments.

    One aggregate per organization counts every segment of the page in one scan (Count with a
    filter per segment, ~0.4 s on a million contacts); counts are cached for
    SEGMENT_COUNT_CACHE_SECONDS, keyed by the segment's last change.
    """
    from django.core.cache import cache

    from contacts.models import Contact

    counts: dict[int, int | None] = {}
    todo: dict[int, list] = {}
    keys = {s.pk: f"segment-count:{s.pk}:{s.updated_at.timestamp() if s.updated_at else 0}" for s in segments}
    cached = cache.get_many(list(keys.values()))
    for segment in segments:
        if keys[segment.pk] in cached:
            counts[segment.pk] = cached[keys[segment.pk]]
        else:
            todo.setdefault(segment.organization_id, []).append(segment)
    for org_id, group in todo.items():
        org = group[0].organization
        filters = {}
        for segment in group:
            try:
                filters[f"s{segment.pk}"] = Count("pk", filter=compile_rules(segment.rules, org=org))
            except RuleError:
                counts[segment.pk] = None
        if filters:
            result = Contact.objects.for_org(org_id).aggregate(**filters)
            for name, value in result.items():
                counts[int(name[1:])] = value
        cache.set_many({keys[s.pk]: counts.get(s.pk) for s in group}, SEGMENT_COUNT_CACHE_SECONDS)
    return counts


class SegmentChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        counts = segment_member_counts(self.result_list)
        for segment in self.result_list:
            segment._member_count = counts.get(segment.pk)


@admin.register(Segment)
class SegmentAdmin(_OrgFormAdmin):
    form = SegmentAdminForm
    list_display = ["name", "member_count", "description", "updated"]
    search_fields = ["name", "description"]
    readonly_fields = ["live_count", "show_contacts", "created", "updated"]

    def get_changelist(self, request, **kwargs):
        return SegmentChangeList

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("organization")

    def get_fields(self, request, obj=None):
        fields = ["name", "description", "rules"]
        if request.user.is_superuser and obj is None:
            fields.insert(0, "organization")
        if obj is not None:
            fields += self.readonly_fields
        return fields

    @admin.display(description="Members")
    def member_count(self, obj):
        count = getattr(obj, "_member_count", None)
        if count is None:
            return format_html('<span class="errornote-inline">{}</span>', "invalid rules")
        url = _contacts_changelist_url(segment=obj.pk)
        return format_html('<a href="{}">{}</a>', url, f"{count:,}") if url else f"{count:,}"

    @admin.display(description="Updated", ordering="updated_at")
    def updated(self, obj):
        return admin_datetime(obj.updated_at)

    @admin.display(description="Created")
    def created(self, obj):
        return admin_datetime(obj.created_at)

    @admin.display(description="Members now")
    def live_count(self, obj):
        try:
            return f"{obj.contacts().count():,}"
        except RuleError as exc:
            return f"invalid rules: {exc}"

    @admin.display(description="Contacts")
    def show_contacts(self, obj):
        url = _contacts_changelist_url(segment=obj.pk)
        return format_html('<a href="{}">Show these contacts</a>', url) if url else "—"


# --- for the contacts changelist ---------------------------------------------------------------
def _admin_org(request):
    return None if request.user.is_superuser else user_organization(request.user)


class _OrgObjectFilter(admin.SimpleListFilter):
    """Contacts in one of the user's organization's objects (`model`): only those are offered or
    accepted; a superuser sees every organization's, named with it."""

    model = None

    def has_output(self):
        # Django drops a filter without choices, and with it the parameter's effect: a stale
        # ?list=<id> would then show every contact instead of an error.
        return bool(self.value()) or super().has_output()

    def _objects(self, request):
        org = _admin_org(request)
        if org is None and not request.user.is_superuser:
            return self.model.objects.none()
        qs = self.model.objects.select_related("organization")
        return qs if org is None else qs.for_org(org)

    def lookups(self, request, model_admin):
        su = request.user.is_superuser
        return [(x.pk, f"{x.organization.name}: {x.name}" if su else x.name) for x in self._objects(request)]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        obj = self._objects(request).filter(pk=value).first() if str(value).isdigit() else None
        if obj is None:
            raise IncorrectLookupParameters(f"No {self.title} with the id {value}.")
        return queryset.filter(self.members(obj))

    def members(self, obj) -> Q:
        raise NotImplementedError


class SegmentListFilter(_OrgObjectFilter):
    title = "segment"
    parameter_name = "segment"
    model = Segment

    def members(self, segment) -> Q:
        try:
            return compile_rules(segment.rules, org=segment.organization) & Q(organization=segment.organization_id)
        except RuleError as exc:
            raise IncorrectLookupParameters(str(exc)) from None


class ListListFilter(_OrgObjectFilter):
    title = "list"
    parameter_name = "list"
    model = ContactList

    def members(self, contact_list) -> Q:
        return q_member_of([contact_list.pk], org=contact_list.organization)


class AddToListForm(forms.Form):
    contact_list = forms.ModelChoiceField(queryset=ContactList.objects.none(), required=False, label="List")
    new_list = forms.CharField(required=False, max_length=200, label="…or a new list named")

    def __init__(self, *args, org, **kwargs):
        super().__init__(*args, **kwargs)
        self.org = org
        self.fields["contact_list"].queryset = ContactList.objects.for_org(org)

    def clean(self):
        cleaned = super().clean()
        chosen, new = cleaned.get("contact_list"), (cleaned.get("new_list") or "").strip()
        if bool(chosen) == bool(new):
            raise forms.ValidationError("Choose a list, or name a new one (not both).")
        if new and ContactList.objects.for_org(self.org).filter(name=new).exists():
            self.add_error("new_list", f"A list named '{new}' already exists: choose it above.")
        return cleaned


@admin.action(description="Add selected contacts to a list…")
def add_to_list(modeladmin, request, queryset):
    """Asks which list (or a new one's name), then adds the selected contacts to it through
    segments.services (events included). The selection may span pages ("select all")."""
    orgs = set(queryset.values_list("organization_id", flat=True).distinct()[:2])
    org = _admin_org(request)
    if org is None:
        if not request.user.is_superuser:
            raise PermissionDenied
        if len(orgs) > 1:
            modeladmin.message_user(request, "Select contacts of one organization at a time.", messages.ERROR)
            return None
        from contacts_crm.models import Organization

        org = Organization.objects.filter(pk__in=orgs).first()
        if org is None:
            return None
    form = AddToListForm(request.POST if "apply" in request.POST else None, org=org)
    if "apply" in request.POST and form.is_valid():
        contact_list = form.cleaned_data["contact_list"]
        if contact_list is None:
            contact_list = ContactList.objects.create(organization=org, name=form.cleaned_data["new_list"].strip())
        try:
            added, already = list_add_queryset(contact_list=contact_list, queryset=queryset, actor=admin_actor(request))
        except ServiceError as exc:
            modeladmin.message_user(request, exc.message, messages.ERROR)
            return None
        modeladmin.message_user(
            request, f"Added {added:,} contact{'s' if added != 1 else ''} to the list “{contact_list.name}”"
            + (f" ({already:,} already in it)." if already else "."), messages.SUCCESS)
        return None
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Add contacts to a list",
        "opts": opts,
        "form": form,
        "count": queryset.count(),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "action_name": "add_to_list",
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    return TemplateResponse(request, "admin/segments/add_to_list.html", context)
