"""Admin forms. They validate with contacts.validation, so the admin accepts and refuses exactly what
the API does (same normalization, same messages); saving is the admin's job, through the services.

A ContactAdminForm never writes its instance: `clean()` leaves `service_data` (the normalized
payload of the fields the user changed) for ContactAdmin.save_model to hand to the service layer.
"""

from __future__ import annotations

import json
import re
import zoneinfo

from django import forms
from django.contrib.admin.widgets import AutocompleteSelectMultiple
from django.urls import reverse
from django.utils.html import format_html
from phonenumber_field.phonenumber import PhoneNumber, to_python
from phonenumber_field.widgets import RegionalPhoneNumberWidget

from contacts_crm.admin_mixins import admin_datetime

from .geodata import COUNTRIES
from .models import Channel, ChannelPreference, Contact, ContactEvent, CustomField, Tag
from .normalize import NormalizationError, normalize_custom_key, normalize_tag, tag_key
from .services import MAX_CUSTOM_FIELDS, MatchConflict, contact_find_match
from .validation import PayloadError, clean_contact_payload, custom_field_definitions, custom_value, loads_json

JSON_SCALAR_RE = re.compile(r"^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false)$")

# Form fields whose text goes to clean_contact_payload as it was typed (the API's cleaners parse
# dates, phones, countries...; a Django DateField or URLField would accept other things).
RAW_TEXT_FIELDS = [
    "phone", "email", "first_name", "last_name", "display_name", "company", "address", "city", "state", "zip",
    "country", "timezone", "lifecycle_stage", "gender", "avatar_url", "notes", "birthday", "language",
    "external_id",
]
LIST_FIELDS = ["secondary_phones", "secondary_emails"]


def contact_label(contact: Contact) -> str:
    """A contact's name, else its email or phone, else "(no name)": never a bare dash."""
    return str(contact) if (contact.full_name or contact.email or contact.phone) else "(no name)"


def contact_admin_link(contact: Contact) -> str:
    """An HTML link to the contact's admin page, labelled with its name (or phone/email)."""
    return format_html(
        '<a href="{}">{}</a>', reverse("admin:contacts_contact_change", args=[contact.pk]), contact_label(contact)
    )


def display_custom_value(value) -> str:
    """How a custom field value is shown in the key = value text: text as is, other JSON as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def custom_fields_as_text(values: dict) -> str:
    return "\n".join(f"{key} = {display_custom_value(value)}" for key, value in (values or {}).items())


def _typed_value(text: str, definition: CustomField | None):
    """A typed value from the admin's text: `42`, `2.5`, `true` are JSON unless the field is text.

    Undefined keys keep their JSON type (design §2), and a typed definition converts the value
    itself, so only text fields and choices of text need the raw string.
    """
    try:  # bounded (contacts.validation): 1e999 is no infinity, 5,000 digits no ValueError
        parsed = loads_json(text) if JSON_SCALAR_RE.match(text) else text
    except ValueError:
        raise NormalizationError(f"'{text[:40]}' is not a finite number in range.") from None
    if definition is None:
        return parsed
    if definition.type == CustomField.Type.TEXT:
        return text
    if definition.type == CustomField.Type.CHOICE:
        return text if text in (definition.choices or []) else parsed
    return text


def parse_custom_fields_text(text: str, *, current: dict, definitions: dict) -> dict:
    """The changes the text makes to `current`: {key: new value, or None to delete the key}.

    One `key = value` per line; an empty value or a deleted line removes the key. A line whose
    text is unchanged is left out, so saving never rewrites a value nobody touched (a number
    stays a number). Raises NormalizationError naming the line.
    """
    by_id = {str(d.pk): d for d in definitions.values()}
    given: dict[str, str] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        if "=" not in line:
            raise NormalizationError(f"Line {number} ('{line.strip()}') has no '=': write one 'key = value' per line.")
        raw_key, _, value = line.partition("=")
        raw_key = raw_key.strip()
        if raw_key.isdigit():
            if raw_key not in by_id:
                raise NormalizationError(f"Line {number}: no custom field has the id {raw_key}.")
            key = by_id[raw_key].key
        else:
            try:
                key = normalize_custom_key(raw_key)
            except NormalizationError as exc:
                raise NormalizationError(f"Line {number}: {exc}") from None
        if key in given:
            raise NormalizationError(f"Line {number}: the key '{key}' is given twice.")
        given[key] = value.strip()
    changes: dict = {}
    for key, value in given.items():
        if key in current and display_custom_value(current[key]) == value:
            continue
        try:
            changes[key] = None if value == "" else _typed_value(value, definitions.get(key))
        except NormalizationError as exc:
            raise NormalizationError(f"{key}: {exc}") from None
    for key in current:
        if key not in given:
            changes[key] = None
    return {k: v for k, v in changes.items() if v is not None or k in current}


def _lines(text: str) -> list[str]:
    return [line.strip() for line in re.split(r"[\n,;]", text or "") if line.strip()]


CHANNEL_STATES = [("subscribed", "Subscribed"), ("unsubscribed", "Unsubscribed")]


class PhoneWidget(RegionalPhoneNumberWidget):
    """django-phonenumber-field's regional widget: national format for the organization's
    region (`(919) 555-0102`), and international (`+44 20 7946 0958`), not raw E.164, otherwise."""

    def format_value(self, value):
        shown = super().format_value(value)
        if shown == value and isinstance(value, str) and value.startswith("+"):
            number = to_python(value)
            if isinstance(number, PhoneNumber) and number.is_valid():
                return number.as_international
        return shown


def display_phone(e164: str | None, region: str | None) -> str:
    """A stored E.164 phone as staff read it, as the contact form shows it (~25 µs a number)."""
    if not e164:
        return ""
    return PhoneWidget(region=region).format_value(e164) or e164


def country_choices(current: str = "") -> list[tuple[str, str]]:
    """ISO 3166-1 countries by name (contacts.geodata, the table the normalizer reads)."""
    choices = [("", "—")] + sorted(((a2, f"{name} ({a2})") for a2, _a3, name in COUNTRIES), key=lambda c: c[1])
    if current and current not in {a2 for a2, _a3, _n in COUNTRIES}:
        choices.append((current, current))
    return choices


def timezone_choices(current: str = "") -> list:
    """The IANA zones of this system's tz database, grouped by area (America, Europe…)."""
    groups: dict[str, list[tuple[str, str]]] = {}
    zones = set(zoneinfo.available_timezones())
    if current:
        zones.add(current)
    for name in sorted(zones):
        area = name.split("/", 1)[0] if "/" in name else "Other"
        groups.setdefault(area, []).append((name, name.replace("_", " ")))
    return [("", "—"), *sorted(groups.items())]


class TagAutocomplete(AutocompleteSelectMultiple):
    """Django's select2 tag picker, rendering only well-formed ids: a forged value such as
    "vip, news" is the field's own "not a valid value" error, not a 500 in the widget's lookup."""

    def optgroups(self, name, value, attr=None):
        return super().optgroups(name, [v for v in value if str(v).isdigit()], attr)


def custom_form_field(definition: CustomField) -> forms.Field:
    """A typed input for one custom field definition. Every field stays text on the way in:
    contacts.validation.custom_value coerces and refuses, for the API, imports and the admin."""
    label = definition.label or definition.key
    help_text = f"custom.{definition.key} ({definition.get_type_display().lower()})"
    kind = definition.type
    if kind == CustomField.Type.BOOLEAN:
        return forms.BooleanField(label=label, required=False, help_text=help_text)
    if kind == CustomField.Type.CHOICE:
        choices = [("", "—")] + [(display_custom_value(c), display_custom_value(c)) for c in definition.choices or []]
        return forms.CharField(label=label, required=False, help_text=help_text, widget=forms.Select(choices=choices))
    if kind == CustomField.Type.DATE:
        widget = forms.DateInput(attrs={"type": "date"})
    elif kind == CustomField.Type.NUMBER:
        widget = forms.NumberInput(attrs={"step": "any"})
    else:
        widget = forms.TextInput(attrs={"class": "vTextField"})
    return forms.CharField(label=label, required=False, help_text=help_text, widget=widget, max_length=1000)


class ContactAdminForm(forms.ModelForm):
    # Set per request by ContactAdminForm.for_org (via ContactAdmin.get_form).
    org = None
    definitions: dict[str, CustomField] = {}

    phone = forms.CharField(
        required=False, max_length=40, widget=PhoneWidget(),
        help_text="Any common format, e.g. (919) 555-1234 or +44 20 7946 0958; stored as E.164.",
    )
    email = forms.CharField(required=False, max_length=254, widget=forms.EmailInput(attrs={"class": "vTextField"}))
    birthday = forms.CharField(required=False, max_length=40, widget=forms.DateInput(attrs={"type": "date"}))
    state = forms.CharField(required=False, max_length=64, help_text="US/CA: a code or name (NC, Ontario).")
    zip = forms.CharField(label="ZIP / postal code", required=False, max_length=16)
    country = forms.CharField(required=False, max_length=64, widget=forms.Select(choices=country_choices()))
    timezone = forms.CharField(required=False, max_length=64, widget=forms.Select(choices=timezone_choices()))
    avatar_url = forms.CharField(label="Avatar URL", required=False, max_length=500)
    secondary_phones = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 40}),
        help_text="One per line. Kept, shown and searched; not used for matching.",
    )
    secondary_emails = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 40}), help_text="One per line.",
    )
    tags = forms.ModelMultipleChoiceField(
        queryset=Tag.objects.none(), required=False,
        help_text="Start typing to find a tag. The list replaces the contact's tags.",
    )
    new_tags = forms.CharField(
        label="New tags", required=False, widget=forms.TextInput(attrs={"size": 40}),
        help_text="Tags that do not exist yet, comma-separated.",
    )
    custom_fields = forms.CharField(
        label="Other custom fields", required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60, "class": "vLargeTextField"}),
        help_text="Keys without a definition: one <code>key = value</code> per line. "
        "An empty value or a removed line deletes the key. At most 20 custom fields in all.",
    )
    opted_out = forms.BooleanField(
        label="Opted out (all channels)", required=False,
        help_text="Global do-not-contact. Changing it here is recorded with source 'admin'.",
    )

    class Meta:
        model = Contact
        fields = [
            "organization", *RAW_TEXT_FIELDS, *LIST_FIELDS, "assignee", "is_test", "opted_out", "tags", "custom_fields",
        ]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3, "cols": 80})}

    @classmethod
    def for_org(cls, org, *, admin_site=None) -> type[ContactAdminForm]:
        """This form with the organization's typed custom-field inputs (`cf_<key>`), one
        Subscribed/Unsubscribed control per channel (`pref_<channel>`) and the tag autocomplete."""
        definitions = custom_field_definitions(org) if org is not None else {}
        attrs: dict = {"org": org, "definitions": definitions, "__module__": cls.__module__}
        for key, definition in definitions.items():
            attrs[f"cf_{key}"] = custom_form_field(definition)
        for channel, label in Channel.choices:
            attrs[f"pref_{channel}"] = forms.ChoiceField(
                label=label, choices=CHANNEL_STATES, initial="subscribed", widget=forms.RadioSelect,
                required=False)
        if admin_site is not None:
            tags_field = Contact._meta.get_field("tags")
            attrs["tags"] = forms.ModelMultipleChoiceField(
                queryset=Tag.objects.for_org(org) if org is not None else Tag.objects.all(), required=False,
                widget=TagAutocomplete(tags_field, admin_site),
                help_text="Start typing to find a tag. The list replaces the contact's tags.")
        return type(cls.__name__, (cls,), attrs)

    @classmethod
    def custom_field_names(cls) -> list[str]:
        return [f"cf_{key}" for key in cls.definitions]

    @classmethod
    def preference_names(cls) -> list[str]:
        return [f"pref_{channel}" for channel in Channel.values]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        contact = self.instance
        region = self.org.default_region if self.org is not None else None
        self.fields["phone"].widget.region = region
        self.fields["country"].widget.choices = country_choices(contact.country)
        self.fields["timezone"].widget.choices = timezone_choices(contact.timezone)
        if self.org is not None and not isinstance(self.fields["tags"].widget, AutocompleteSelectMultiple):
            self.fields["tags"].queryset = Tag.objects.for_org(self.org)
        defined = set(self.definitions)
        if not contact._state.adding:
            self.initial["tags"] = [t.pk for t in contact.tags.all()]
            self.initial["custom_fields"] = custom_fields_as_text(
                {k: v for k, v in (contact.custom_fields or {}).items() if k not in defined})
            for key in defined:
                value = (contact.custom_fields or {}).get(key)
                self.initial[f"cf_{key}"] = value if isinstance(value, bool) else (
                    "" if value is None else display_custom_value(value))
            for name in LIST_FIELDS:
                self.initial[name] = "\n".join(getattr(contact, name) or [])
            for name in RAW_TEXT_FIELDS:
                value = getattr(contact, name)
                self.initial[name] = "" if value is None else str(value)
            self._describe_preferences(contact)
        self.service_data: dict = {}
        self.service_org = None
        self.warnings: list[str] = []
        self.merge_target: Contact | None = None
        self.unchanged_after_normalizing: set[str] = set()

    def _describe_preferences(self, contact: Contact) -> None:
        """Each channel's state, and who set it when, from the preference rows and the timeline
        (two queries)."""
        prefs = {p.channel: p for p in ChannelPreference.objects.filter(contact=contact)}
        last_event: dict[str, ContactEvent] = {}
        events = ContactEvent.objects.filter(
            contact=contact, kind__in=[ContactEvent.Kind.OPTED_IN, ContactEvent.Kind.OPTED_OUT],
            data__channel__in=list(prefs)).select_related("actor_user", "actor_api_key")[:200] if prefs else []
        for event in events:
            last_event.setdefault(event.data.get("channel"), event)
        for channel in Channel.values:
            field = self.fields[f"pref_{channel}"]
            pref = prefs.get(channel)
            if pref is None:
                field.help_text = "Subscribed: never changed."
                continue
            self.initial[f"pref_{channel}"] = "subscribed" if pref.opted_in else "unsubscribed"
            event = last_event.get(channel)
            who = f" by {event.actor_display}" if event is not None else ""
            state = "Subscribed" if pref.opted_in else "Unsubscribed"
            field.help_text = f"{state} {admin_datetime(pref.changed_at)}{who} (source: {pref.get_source_display()})."
            if not pref.opted_in:
                field.help_text += " Set it back to Subscribed only when the person asked for it."

    def _post_clean(self):
        # The ModelForm would copy the raw input onto the instance and run the model's validation;
        # clean() validates with the API's cleaners instead and the services write the contact.
        pass

    def _organization(self):
        if not self.instance._state.adding:
            return self.instance.organization
        return self.org or self.cleaned_data.get("organization")

    def _typed_changed(self) -> list[str]:
        return [name for name, bf in self._bound_items() if bf._has_changed()]

    @property
    def changed_data(self) -> list[str]:
        # What the history ("Changed phone") reports: not a field whose new text normalizes to
        # the stored value, e.g. the phone shown as (919) 555-0102 and stored as +19195550102.
        return [name for name in self._typed_changed() if name not in self.unchanged_after_normalizing]

    def _payload(self, org) -> dict:
        """The raw values the user gave (add) or changed (change), in the API's shapes."""
        adding = self.instance._state.adding
        names = [n for n in self.fields if n != "organization" and n not in self.errors]
        if not adding:
            changed = set(self._typed_changed())
            names = [n for n in names if n in changed]
        payload: dict = {}
        preferences: dict[str, bool] = {}
        for name in names:
            value = self.cleaned_data.get(name)
            if name in RAW_TEXT_FIELDS:
                payload[name] = (value or None) if name in {"phone", "email", "birthday"} else (value or "")
            elif name in LIST_FIELDS:
                payload[name] = [line.strip() for line in (value or "").splitlines() if line.strip()]
            elif name in {"tags", "new_tags"}:
                chosen = self.cleaned_data.get("tags") or []
                payload["tags"] = [t.name for t in chosen] + _lines(self.cleaned_data.get("new_tags") or "")
            elif name == "assignee":
                payload["assignee"] = value.pk if value is not None else None
            elif name in {"is_test", "opted_out"}:
                payload[name] = bool(value)
            elif name == "custom_fields":
                payload["custom_fields"] = value
            elif name.startswith("pref_") and value:
                channel, opted_in = name[len("pref_"):], value == "subscribed"
                # Adding a contact never subscribes anyone: only the channels ticked Unsubscribed go.
                if not (adding and opted_in):
                    preferences[channel] = opted_in
        if preferences:
            payload["preferences"] = preferences
        if adding:
            payload = {k: v for k, v in payload.items() if v not in (None, "", [], False)}
        return payload

    def _typed_custom_changes(self, current: dict, errors: dict) -> dict:
        """{key: coerced value or None (delete)} for the typed inputs that changed; a bad value
        becomes an error on its own input, so every bad field shows at once."""
        adding = self.instance._state.adding
        changed = set(self._typed_changed())
        out = {}
        for key, definition in self.definitions.items():
            name = f"cf_{key}"
            if name in self.errors or (not adding and name not in changed):
                continue
            raw = self.cleaned_data.get(name)
            if raw in (None, "") or (adding and raw is False):
                if key in current:
                    out[key] = None
                continue
            try:
                out[key] = custom_value(definition, key, raw)
            except NormalizationError as exc:
                errors[name] = [str(exc)]
        return out

    def clean(self):
        cleaned = super().clean()
        org = self._organization()
        if org is None:
            self.add_error("organization" if "organization" in self.fields else None, "Choose an organization.")
            return cleaned
        payload = self._payload(org)
        errors: dict[str, list[str]] = {}
        current = self.instance.custom_fields or {}
        custom: dict = {}
        if "custom_fields" in payload:
            untyped = {k: v for k, v in current.items() if k not in self.definitions}
            try:
                custom.update(parse_custom_fields_text(
                    payload["custom_fields"], current=untyped, definitions=self.definitions))
            except NormalizationError as exc:
                errors["custom_fields"] = [str(exc)]
            del payload["custom_fields"]
        custom.update(self._typed_custom_changes(current, errors))
        if custom and "custom_fields" not in errors:
            merged = {**current, **custom}
            kept = [key for key, value in merged.items() if value is not None]
            if len(kept) > MAX_CUSTOM_FIELDS:
                errors["custom_fields"] = [
                    f"A contact holds at most {MAX_CUSTOM_FIELDS} custom fields; this would leave {len(kept)}."
                ]
            payload["custom_fields"] = custom
        contact = None if self.instance._state.adding else self.instance
        try:
            data, warnings = clean_contact_payload(payload, org=org, contact=contact, definitions=self.definitions)
        except PayloadError as exc:
            errors = {**exc.errors, **errors}
            data, warnings = {}, []
        for field, messages in errors.items():
            self.add_error(field if field in self.fields else None, messages)
        if errors or self.errors:
            return cleaned
        if contact is not None:
            self.unchanged_after_normalizing = {
                name for name, value in data.items() if name in RAW_TEXT_FIELDS and getattr(contact, name) == value
            }
            data = {k: v for k, v in data.items() if k not in self.unchanged_after_normalizing}
        self._check_conflicts(org, data)
        self.service_data, self.service_org, self.warnings = data, org, warnings
        return cleaned

    def _check_conflicts(self, org, data: dict) -> None:
        """Form errors, with a link, for a phone or email that belongs to another contact.

        Adding a contact whose phone or email exists is refused unless the user pressed the
        error's "Merge into …" button (`_merge_into` = that contact's id): then save_model hands
        the data to contact_create_or_merge, the one merge rule. One query.
        """
        if self.instance._state.adding:
            try:
                target = contact_find_match(org=org, phone=data.get("phone"), email=data.get("email"))
            except MatchConflict:
                phone_owner = contact_find_match(org=org, phone=data["phone"], email=None)
                email_owner = contact_find_match(org=org, phone=None, email=data["email"])
                self.add_error("phone", format_html(
                    "This phone belongs to {} and the email to another contact, {}. Change one of them.",
                    contact_admin_link(phone_owner), contact_admin_link(email_owner),
                ))
                return
            if target is None or target.deleted_at is not None:
                return  # nobody, or a trashed contact, which the add restores (contacts.trash)
            if self.data.get("_merge_into") == str(target.pk):
                self.merge_target = target
                return
            field = "phone" if data.get("phone") and target.phone == data["phone"] else "email"
            self.add_error(field, format_html(
                'This {} belongs to an existing contact, {}. Change it, or '
                '<button type="submit" name="_merge_into" value="{}" class="button merge-into" id="merge-into">'
                "Merge into {}</button>: the fields you filled in replace its values, tags and custom fields "
                "are added.",
                field, contact_admin_link(target), target.pk, contact_label(target),
            ))
            return
        for field in ("phone", "email"):
            value = data.get(field)
            if not value or value == getattr(self.instance, field):
                continue
            other = contact_find_match(org=org, **{"phone": None, "email": None, field: value})
            if other is not None and other.pk != self.instance.pk:
                self.add_error(field, format_html(
                    "Another contact, {}, already has the {} {}.", contact_admin_link(other), field, value
                ))


class TagAdminForm(forms.ModelForm):
    org = None

    class Meta:
        model = Tag
        fields = ["organization", "name"]

    def clean_name(self):
        try:
            return normalize_tag(self.cleaned_data["name"])
        except NormalizationError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self):
        cleaned = super().clean()
        org = self.org or cleaned.get("organization") or (
            self.instance.organization if self.instance.organization_id else None
        )
        name = cleaned.get("name")
        if org is not None and name:
            clash = Tag.objects.for_org(org).filter(key=tag_key(name)).exclude(pk=self.instance.pk).first()
            if clash is not None:
                self.add_error("name", f"The tag '{clash.name}' already exists (tags compare case-insensitively).")
        if name:
            self.instance.key = tag_key(name)
        return cleaned


class CustomFieldAdminForm(forms.ModelForm):
    org = None

    choices = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4, "cols": 40}),
        help_text="For a choice field: one allowed value per line.",
    )

    class Meta:
        model = CustomField
        fields = ["organization", "key", "label", "type", "choices"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:
            self.initial["choices"] = "\n".join(display_custom_value(v) for v in self.instance.choices or [])

    def clean_key(self):
        try:
            return normalize_custom_key(self.cleaned_data["key"])
        except NormalizationError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_choices(self):
        lines = [line.strip() for line in (self.cleaned_data.get("choices") or "").splitlines() if line.strip()]
        return [json.loads(line) if JSON_SCALAR_RE.match(line) and line not in {"true", "false"} else line
                for line in lines]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("type") == CustomField.Type.CHOICE and not cleaned.get("choices"):
            self.add_error("choices", "A choice field needs at least one choice.")
        org = self.org or cleaned.get("organization") or (
            self.instance.organization if self.instance.organization_id else None
        )
        key = cleaned.get("key")
        if org is not None and key:
            clash = CustomField.objects.for_org(org).filter(key=key).exclude(pk=self.instance.pk)
            if clash.exists():
                self.add_error("key", f"A custom field with the key '{key}' already exists.")
        return cleaned
