"""Admin forms. They validate with contacts.validation, so the admin accepts and refuses exactly what
the API does (same normalization, same messages); saving is the admin's job, through the services.

A ContactAdminForm never writes its instance: `clean()` leaves `service_data` (the normalized
payload of the fields the user changed) for ContactAdmin.save_model to hand to the service layer.
"""

from __future__ import annotations

import json
import re

from django import forms
from django.urls import reverse
from django.utils.html import format_html

from .models import Contact, CustomField, Tag
from .normalize import NormalizationError, normalize_custom_key, normalize_tag, tag_key
from .services import MAX_CUSTOM_FIELDS, MatchConflict, contact_find_match
from .validation import PayloadError, clean_contact_payload, custom_field_definitions, loads_json

JSON_SCALAR_RE = re.compile(r"^(-?\d+(\.\d+)?([eE][+-]?\d+)?|true|false)$")

# Form fields whose text goes to clean_contact_payload as it was typed (the API's cleaners parse
# dates, phones, countries...; a Django DateField or URLField would accept other things).
RAW_TEXT_FIELDS = [
    "phone", "email", "first_name", "last_name", "display_name", "company", "address", "city", "state", "zip",
    "country", "timezone", "lifecycle_stage", "gender", "avatar_url", "notes", "birthday", "language",
    "external_id",
]
LIST_FIELDS = ["secondary_phones", "secondary_emails"]


def contact_admin_link(contact: Contact) -> str:
    """An HTML link to the contact's admin page, labelled with its name (or phone/email)."""
    return format_html(
        '<a href="{}">{}</a>', reverse("admin:contacts_contact_change", args=[contact.pk]), str(contact)
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


class ContactAdminForm(forms.ModelForm):
    # Set per request by ContactAdmin.get_form (None for a superuser, who picks the organization).
    org = None

    phone = forms.CharField(
        required=False, max_length=40,
        help_text="Any common format, e.g. (919) 555-1234 or +44 20 7946 0958; stored as E.164.",
    )
    email = forms.CharField(required=False, max_length=254)
    birthday = forms.CharField(required=False, max_length=40, help_text="e.g. 1990-03-14 or 03/14/1990.")
    state = forms.CharField(required=False, max_length=64, help_text="US/CA: a code or name (NC, Ontario).")
    zip = forms.CharField(label="ZIP / postal code", required=False, max_length=16)
    country = forms.CharField(required=False, max_length=64, help_text="ISO code or English name (US, USA, Canada).")
    timezone = forms.CharField(required=False, max_length=64, help_text="IANA name, e.g. America/New_York.")
    avatar_url = forms.CharField(label="Avatar URL", required=False, max_length=500)
    secondary_phones = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 40}),
        help_text="One per line. Kept, shown and searched; not used for matching.",
    )
    secondary_emails = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 40}), help_text="One per line.",
    )
    tags = forms.CharField(
        required=False, widget=forms.TextInput(attrs={"size": 60}),
        help_text="Comma-separated; compared case-insensitively. The list replaces the contact's tags.",
    )
    custom_fields = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 5, "cols": 60, "class": "vLargeTextField"}),
        help_text="One <code>key = value</code> per line (a custom field's id works as its key). "
        "An empty value or a removed line deletes the key. At most 20.",
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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        contact = self.instance
        if not contact._state.adding:
            self.initial["tags"] = ", ".join(sorted((t.name for t in contact.tags.all()), key=str.casefold))
            self.initial["custom_fields"] = custom_fields_as_text(contact.custom_fields)
            for name in LIST_FIELDS:
                self.initial[name] = "\n".join(getattr(contact, name) or [])
            for name in RAW_TEXT_FIELDS:
                value = getattr(contact, name)
                self.initial[name] = "" if value is None else str(value)
        self.service_data: dict = {}
        self.service_org = None
        self.warnings: list[str] = []
        self.merge_target: Contact | None = None

    def _post_clean(self):
        # The ModelForm would copy the raw input onto the instance and run the model's validation;
        # clean() validates with the API's cleaners instead and the services write the contact.
        pass

    def _organization(self):
        if not self.instance._state.adding:
            return self.instance.organization
        return self.org or self.cleaned_data.get("organization")

    def _payload(self, org) -> dict:
        """The raw values the user gave (add) or changed (change), in the API's shapes."""
        adding = self.instance._state.adding
        names = [n for n in self.fields if n != "organization"]
        if not adding:
            names = [n for n in names if n in self.changed_data]
        payload: dict = {}
        for name in names:
            value = self.cleaned_data.get(name)
            if name in RAW_TEXT_FIELDS:
                payload[name] = (value or None) if name in {"phone", "email", "birthday"} else (value or "")
            elif name in LIST_FIELDS:
                payload[name] = [line.strip() for line in (value or "").splitlines() if line.strip()]
            elif name == "tags":
                payload["tags"] = _lines(value)
            elif name == "assignee":
                payload["assignee"] = value.pk if value is not None else None
            elif name in {"is_test", "opted_out"}:
                payload[name] = bool(value)
            elif name == "custom_fields":
                payload["custom_fields"] = value
        if adding:
            payload = {k: v for k, v in payload.items() if v not in (None, "", [], False)}
        return payload

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        org = self._organization()
        if org is None:
            self.add_error("organization" if "organization" in self.fields else None, "Choose an organization.")
            return cleaned
        payload = self._payload(org)
        errors: dict[str, list[str]] = {}
        if "custom_fields" in payload:
            try:
                payload["custom_fields"] = parse_custom_fields_text(
                    payload["custom_fields"], current=self.instance.custom_fields or {},
                    definitions=custom_field_definitions(org),
                )
            except NormalizationError as exc:
                errors["custom_fields"] = [str(exc)]
                del payload["custom_fields"]
            else:
                merged = {**(self.instance.custom_fields or {}), **payload["custom_fields"]}
                kept = [key for key, value in merged.items() if value is not None]
                if len(kept) > MAX_CUSTOM_FIELDS:
                    errors["custom_fields"] = [
                        f"A contact holds at most {MAX_CUSTOM_FIELDS} custom fields; this would leave {len(kept)}."
                    ]
        contact = None if self.instance._state.adding else self.instance
        try:
            data, warnings = clean_contact_payload(payload, org=org, contact=contact)
        except PayloadError as exc:
            errors = {**exc.errors, **errors}
            data, warnings = {}, []
        for field, messages in errors.items():
            self.add_error(field if field in self.fields else None, messages)
        if errors:
            return cleaned
        self._check_conflicts(org, data)
        self.service_data, self.service_org, self.warnings = data, org, warnings
        return cleaned

    def _check_conflicts(self, org, data: dict) -> None:
        """Form errors, with a link, for a phone or email that belongs to another contact.

        The service raises MatchConflict too (and the admin catches it), but only a form error
        lets the user fix the value without losing what they typed. One query.
        """
        if self.instance._state.adding:
            try:
                self.merge_target = contact_find_match(org=org, phone=data.get("phone"), email=data.get("email"))
            except MatchConflict:
                phone_owner = contact_find_match(org=org, phone=data["phone"], email=None)
                email_owner = contact_find_match(org=org, phone=None, email=data["email"])
                self.add_error("phone", format_html(
                    "This phone belongs to {} and the email to another contact, {}. Change one of them.",
                    contact_admin_link(phone_owner), contact_admin_link(email_owner),
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
