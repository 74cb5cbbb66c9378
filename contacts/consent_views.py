"""API of issue 10: trash, deleted feed, consent ledger, GDPR, suppression list, inbound keywords.

Thin views: each parses its input and calls contacts.trash / contacts.consent.
"""

from __future__ import annotations

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts_crm.api.pagination import paginate, paging_parameters
from contacts_crm.api.permissions import HasOrgScope, request_organization
from contacts_crm.api.schema import page_serializer

from . import consent, trash
from .models import Channel, ConsentRecord, Contact, ContactTombstone, Suppression
from .normalize import NormalizationError, normalize_email, normalize_phone
from .serializers import ContactPageSerializer, ContactSerializer
from .views import UUID_RE, OrgViewMixin, api_actor

TRASH_SORTS = ("-deleted_at", "deleted_at")
LEDGER_SORTS = ("-created_at", "created_at")
SUPPRESSION_SORTS = ("-since", "since")


def _reject_unknown(request, allowed):
    unknown = set(request.query_params) - set(allowed) - {"limit", "cursor", "offset", "sort", "include_total"}
    if unknown:
        raise ValidationError({name: [f"Unknown parameter '{name}'."] for name in sorted(unknown)})


_DATETIME = serializers.DateTimeField()


def _iso(value):
    return _DATETIME.to_representation(value) if value else None


def trashed_contact_json(contact: dict) -> dict:
    """A trashed contact's representation from its row (Contact.objects.api_rows("deleted_at"))."""
    return {**ContactSerializer(contact).data, "deleted_at": _iso(contact["deleted_at"])}


def suppression_json(entry: Suppression) -> dict:
    return {"id": entry.id, "kind": entry.kind, "scope": entry.scope, "since": _iso(entry.since),
            "source": entry.source, "active": entry.lifted_at is None, "lifted_at": _iso(entry.lifted_at),
            "lift_reason": entry.lift_reason}


class ReadOrWriteScope(HasOrgScope):
    """POST /suppressions/check only reads (its value travels in a body): a read key may call it."""

    def has_permission(self, request, view):
        if getattr(view, "action", None) == "check":
            if not (request.user and request.user.is_authenticated):
                return False
            request_organization(request)
            return True
        return super().has_permission(request, view)


class DeletedEntrySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    deleted_at = serializers.DateTimeField(allow_null=True)
    purged_at = serializers.DateTimeField(allow_null=True)
    purged = serializers.BooleanField()


class ConsentRecordSerializer(serializers.Serializer):
    """One ledger row (contacts.trash.consent_record_json): channel, opted_in, source, actor, time,
    evidence."""

    id = serializers.IntegerField()
    channel = serializers.CharField(allow_null=True, help_text="null: the global do-not-contact flag.")
    opted_in = serializers.BooleanField()
    source = serializers.CharField()
    actor = serializers.CharField()
    evidence = serializers.DictField()
    created_at = serializers.DateTimeField()


class GdprExportSerializer(serializers.Serializer):
    """The contact (its representation plus `deleted_at`) and everything held about it."""

    contact = serializers.DictField()


class ContactTrashViewSet(OrgViewMixin, viewsets.GenericViewSet):
    """The trash, the deleted feed, the consent ledger and GDPR export/erase of a contact."""

    serializer_class = ContactSerializer
    lookup_value_regex = UUID_RE

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Contact.objects.none()
        # Trashed contacts included: restore, the ledger, export and erase work on both.
        return Contact.objects.for_org(self.org, trashed=True)

    def any_contact(self, *, lock=False):
        qs = self.get_queryset()
        return get_object_or_404(qs.select_for_update() if lock else qs, pk=self.kwargs["pk"])

    @extend_schema(parameters=paging_parameters(TRASH_SORTS), responses=ContactPageSerializer,
                   description="Trashed contacts, newest deletion first, each with `deleted_at`.")
    @action(detail=False, methods=["get"])
    def trash(self, request):
        _reject_unknown(request, ())
        qs = self.get_queryset().in_trash().api_rows("deleted_at")
        page = paginate(request, qs, sorts=TRASH_SORTS)
        return Response(page.body([trashed_contact_json(c) for c in page.items]))

    @extend_schema(
        parameters=[OpenApiParameter("since", OpenApiTypes.DATETIME, description="ISO time; default: all."),
                    *paging_parameters(("changed_at",))],
        responses=page_serializer(DeletedEntrySerializer),
        description="Contacts trashed or purged since `since`, oldest change first: "
        "`{id, deleted_at, purged_at, purged}`. Purged ids are kept for good (tombstones).",
    )
    @action(detail=False, methods=["get"])
    def deleted(self, request):
        _reject_unknown(request, ("since",))
        qs = ContactTombstone.objects.for_org(self.org)
        since = request.query_params.get("since")
        if since == "":
            raise ValidationError({"since": ["since is empty: give an ISO time, or leave the parameter out."]})
        if since:
            try:
                parsed = parse_datetime(since.replace(" ", "+"))
            except ValueError:  # well-formed but impossible, e.g. month 13
                parsed = None
            if parsed is None:
                raise ValidationError({"since": [f"'{since}' is not an ISO 8601 time (e.g. 2026-01-31T12:00:00Z)."]})
            if parsed.tzinfo is None:
                raise ValidationError({"since": ["Give a time zone (e.g. a trailing Z for UTC)."]})
            qs = qs.filter(changed_at__gte=parsed)
        page = paginate(request, qs, sorts=("changed_at",))
        return Response(page.body([
            {"id": str(t.contact_id), "deleted_at": _iso(t.deleted_at), "purged_at": _iso(t.purged_at),
             "purged": t.purged_at is not None} for t in page.items
        ]))

    @extend_schema(request=None, responses=ContactSerializer,
                   description="Takes the contact out of the trash: tags, lists, custom fields, preferences, "
                   "consent and timeline intact. A live contact answers 200 unchanged.")
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        with transaction.atomic():
            contact = self.any_contact(lock=True)
            trash.contact_restore(contact=contact, actor=api_actor(request))
        return Response(ContactSerializer(Contact.objects.with_related().get(pk=contact.pk)).data)

    @extend_schema(parameters=paging_parameters(LEDGER_SORTS), responses=page_serializer(ConsentRecordSerializer),
                   description="The consent ledger of the contact (live or trashed), newest first.")
    @action(detail=True, methods=["get"])
    def consent(self, request, pk=None):
        _reject_unknown(request, ())
        contact = self.any_contact()
        qs = ConsentRecord.objects.filter(contact=contact).select_related("actor_user", "actor_api_key")
        page = paginate(request, qs, sorts=LEDGER_SORTS)
        return Response(page.body([trash.consent_record_json(r) for r in page.items]))

    @extend_schema(responses=GdprExportSerializer,
                   description="One JSON document: the contact, tags, lists, preferences, consent ledger, timeline.")
    @action(detail=True, methods=["get"], url_path="gdpr-export")
    def gdpr_export(self, request, pk=None):
        contact = get_object_or_404(self.get_queryset().with_related(), pk=pk)
        body = {"contact": ContactSerializer(contact).data, **trash.contact_gdpr_export(contact=contact)}
        body["contact"]["deleted_at"] = _iso(contact.deleted_at)
        return Response(body)

    @extend_schema(request=None, responses={204: None},
                   description="Erases the contact (GDPR): the contact, its timeline and the personal data of its "
                   "ledger rows go; its phone and email are suppressed so that it is never messaged again.")
    @action(detail=True, methods=["post"])
    def erase(self, request, pk=None):
        with transaction.atomic():
            contact = self.any_contact(lock=True)
            trash.contact_erase(contact=contact, actor=api_actor(request))
        return Response(status=204)


class SuppressionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=Suppression.Kind.choices)
    scope = serializers.JSONField(help_text='"all" or a list of channels.')
    since = serializers.DateTimeField()
    source = serializers.ChoiceField(choices=Suppression.Source.choices)
    active = serializers.BooleanField()
    lifted_at = serializers.DateTimeField(allow_null=True)
    lift_reason = serializers.CharField()


class SuppressionViewSet(OrgViewMixin, viewsets.GenericViewSet):
    """The suppression list: hashed phones and emails of purged or erased contacts."""

    permission_classes = [ReadOrWriteScope]
    serializer_class = SuppressionSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Suppression.objects.none()
        return Suppression.objects.for_org(self.org)

    @extend_schema(parameters=[OpenApiParameter("active", OpenApiTypes.BOOL, description="Only active (or lifted)."),
                               *paging_parameters(SUPPRESSION_SORTS)],
                   responses=page_serializer(SuppressionSerializer),
                   description="Entries: kind, scope, since, source (never the hashed value).")
    def list(self, request):
        _reject_unknown(request, ("active",))
        qs = self.get_queryset()
        active = request.query_params.get("active")
        if active not in (None, ""):
            if active.lower() not in {"true", "false", "1", "0"}:
                raise ValidationError({"active": [f"'{active}' is not true or false."]})
            qs = qs.filter(lifted_at__isnull=active.lower() in {"true", "1"})
        page = paginate(request, qs, sorts=SUPPRESSION_SORTS)
        return Response(page.body([suppression_json(e) for e in page.items]))

    @extend_schema(
        request=inline_serializer("SuppressionCheckInput", {"phone": serializers.CharField(required=False),
                                                             "email": serializers.CharField(required=False)}),
        responses=inline_serializer("SuppressionCheckOutput", {"suppressed": serializers.BooleanField(),
                                                               "scope": serializers.JSONField()}),
        description="May I message this phone (any format) or email? True for an opted-out contact, live or "
        "trashed, and for any suppression entry. A read key may call it.",
    )
    @action(detail=False, methods=["post"])
    def check(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        phone, email = data.get("phone"), data.get("email")
        if (phone in (None, "")) == (email in (None, "")):
            raise ValidationError({"phone": ["Give a phone or an email (one of them)."]})
        try:
            if phone not in (None, ""):
                if not isinstance(phone, str):
                    raise NormalizationError("The phone must be a string.")
                result = consent.suppression_check(org=self.org,
                                                   phone=normalize_phone(phone, self.org.default_region).e164)
            else:
                if not isinstance(email, str):
                    raise NormalizationError("The email must be a string.")
                result = consent.suppression_check(org=self.org, email=normalize_email(email))
        except NormalizationError as exc:
            raise ValidationError({"phone" if phone not in (None, "") else "email": [str(exc)]}) from None
        return Response(result)


class InboundInputSerializer(serializers.Serializer):
    sender = serializers.CharField(max_length=64, help_text="The sender's phone, any format.")
    channel = serializers.ChoiceField(choices=Channel.values, default=Channel.SMS)
    body = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=consent.MAX_INBOUND_BODY)
    message_id = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")
    received_at = serializers.DateTimeField(required=False)

    def to_internal_value(self, data):
        if isinstance(data, dict) and "from" in data:
            data = {**data, "sender": data["from"]}
            data.pop("from")
        try:
            return super().to_internal_value(data)
        except ValidationError as exc:
            detail = exc.detail
            if isinstance(detail, dict) and "sender" in detail:
                detail["from"] = detail.pop("sender")
            raise ValidationError(detail) from None


class InboundView(OrgViewMixin, APIView):
    """POST /inbound: an inbound message from a provider's webhook; applies STOP/START/HELP."""

    @extend_schema(
        request=inline_serializer("InboundInput", {
            "from": serializers.CharField(), "channel": serializers.ChoiceField(choices=Channel.values),
            "body": serializers.CharField(), "message_id": serializers.CharField(required=False),
            "received_at": serializers.DateTimeField(required=False)}),
        responses=inline_serializer("InboundOutput", {
            "contact_id": serializers.UUIDField(allow_null=True), "action": serializers.CharField(),
            "channel": serializers.CharField(allow_null=True), "reply": serializers.CharField(allow_null=True)}),
        description="Keywords (case-insensitive, the whole message): STOP… opts out of the channel, STOPALL of "
        "every channel, START… opts back in, HELP/INFO answers. `reply` is the text to send back.",
    )
    def post(self, request):
        serializer = InboundInputSerializer(data=request.data if isinstance(request.data, dict) else {})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            phone = normalize_phone(data["sender"], self.org.default_region).e164
        except NormalizationError as exc:
            raise ValidationError({"from": [str(exc)]}) from None
        result = consent.inbound_message(
            org=self.org, phone=phone, body=data["body"], channel=data["channel"], message_id=data["message_id"],
            received_at=data.get("received_at"), actor=api_actor(request),
        )
        result.pop("event")
        return Response(result)


def inbound_on_contact(request, contact: Contact, data: dict) -> Response:
    """POST /contacts/{id}/activity with kind message_received and data.body: the inbound code on
    this contact; answers the recorded event (201) like any activity."""
    from rest_framework import status

    from .serializers import EventSerializer

    extra = data.get("data") or {}
    channel = extra.get("channel") or Channel.SMS
    if channel not in Channel.values:
        raise ValidationError({"data": {"channel": [f"Unknown channel '{channel}'; channels: "
                                                    f"{', '.join(Channel.values)}."]}})
    result = consent.inbound_message(
        org=request_organization(request), phone=contact.phone, body=extra["body"], channel=channel,
        message_id=str(extra.get("message_id") or ""), received_at=data.get("occurred_at"),
        actor=api_actor(request), contact=contact, data=extra,
    )
    return Response(EventSerializer(result["event"]).data, status=status.HTTP_201_CREATED)
