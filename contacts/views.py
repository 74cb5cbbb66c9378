from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.response import Response

from contacts_crm.api.errors import Conflict, envelope_for
from contacts_crm.api.nul import reject_nul_characters
from contacts_crm.api.pagination import SortKey, paginate, paginate_keys, paging_parameters, parse_bool_param
from contacts_crm.api.parsers import BoundedJSONParser as JSONParser  # depth and number bounds
from contacts_crm.api.permissions import HasOrgScope, request_actor, request_organization

from . import services
from .counting import (
    EXACT_PARAMETER,
    CountAnswerSerializer,
    contacts_count_plan,
    count_answer,
    parse_exact,
    tag_contact_counts,
)
from .custom_fields import custom_field_indexes_schedule
from .filters import FILTER_DOCS, filter_contacts, filter_parameters
from .models import Channel, Contact, ContactEvent, CustomField, Tag
from .normalize import NormalizationError, normalize_phone, normalize_tag
from .querysets import SortFold
from .serializers import (
    BulkDeleteInputSerializer,
    BulkInputSerializer,
    BulkOutputSerializer,
    ContactInputSerializer,
    ContactPageSerializer,
    ContactSerializer,
    ContactWithOutcomeSerializer,
    CustomFieldPageSerializer,
    CustomFieldSerializer,
    DeletedSerializer,
    EventInputSerializer,
    EventPageSerializer,
    EventSerializer,
    MergedContactSerializer,
    MergeInputSerializer,
    OptOutInputSerializer,
    PreferencesInputSerializer,
    TagPageSerializer,
    TagSerializer,
    TagsInputSerializer,
    TagsRefInputSerializer,
    VerifyInputSerializer,
    VerifySerializer,
)
from .tags import resolve_tag_refs, tag_create, tag_delete, tag_rename
from .textability import VERIFY_TIMEOUT, TextabilityConfigError, textability_verify
from .validation import PayloadError, clean_contact_payload, clean_email, clean_preferences, custom_field_definitions

_NAME_KEYS = [SortKey("_sort_last", SortFold(F("last_name"))), SortKey("_sort_first", SortFold(F("first_name")))]
# Every contacts sort, keyset-paged: last name, first name (case- and accent-insensitive), then id.
CONTACT_SORT_KEYS = {
    "-updated_at": [SortKey("updated_at", kind="datetime")], "updated_at": [SortKey("updated_at", kind="datetime")],
    "-created_at": [SortKey("created_at", kind="datetime")], "created_at": [SortKey("created_at", kind="datetime")],
    "name": _NAME_KEYS, "-name": _NAME_KEYS,
}
CONTACT_SORTS = tuple(CONTACT_SORT_KEYS)
PRIORITY_LIST_PARAM = OpenApiParameter(
    "priority_list", OpenApiTypes.INT,
    description="A list id: its members come first, then everyone else, each part in the chosen sort.")


def paginate_contacts(request, queryset, *, org):
    """A page of contacts in any CONTACT_SORTS, `?priority_list=` members first; keyset cursors
    for every sort. Queries: one (plus a COUNT with include_total, and one to check the list)."""
    raw = request.query_params.get("priority_list")
    leading, scope = (), ""
    if raw is not None:
        from segments.models import ContactList, ListMembership

        if not raw.isdigit():
            raise ValidationError({"priority_list": [f"'{raw}' is not a list id."]})
        if not ContactList.objects.for_org(org).filter(pk=int(raw)).exists():
            raise NotFound(f"No list {raw} in your organization.")
        members = ListMembership.objects.filter(list_id=int(raw), contact=OuterRef("pk"))
        leading, scope = (SortKey("_priority", Exists(members), kind="bool"),), raw
    return paginate_keys(request, queryset, sorts=CONTACT_SORT_KEYS, default_sort="-updated_at", leading=leading,
                         cursor_scope=scope)
UUID_RE = "[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
BULK_MAX = 1000
REGION_PARAM = OpenApiParameter("region", OpenApiTypes.STR, description="ISO alpha-2 region to read a national "
                                "phone (default: the organization's).")
OVERWRITE_PARAM = OpenApiParameter("overwrite", OpenApiTypes.BOOL, description="Replace custom_fields.")


def api_actor(request) -> services.Actor:
    who = request_actor(request)
    return services.Actor(user=who.get("user"), api_key=who.get("api_key"), source="api")


def service_error(exc: services.ServiceError):
    """ServiceError -> the API exception carrying the envelope's fields."""
    if isinstance(exc, services.MatchConflict):
        err = Conflict(exc.message)
        err.crm_extra = {k: v for k, v in exc.extra.items() if v is not None}
        return err
    return ValidationError({exc.field or "non_field_errors": [exc.message]})


def payload_error(exc: PayloadError):
    return ValidationError(exc.errors)


def clean_region(value, *, field: str = "region") -> str | None:
    """An ISO alpha-2 region phonenumbers knows (`GB`), upper-cased; None when not given."""
    if value in (None, ""):
        return None
    import phonenumbers

    region = value.strip().upper() if isinstance(value, str) else None
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError({field: [f"{value!r} is not an ISO 3166-1 alpha-2 region (e.g. US, GB)."]})
    return region


def split_region(data, org=None):
    """(body without `region`, its region or None): the region travels beside the contact's fields.
    With `org`, `{"tag_id": n}` tags become their names too (a 400 naming each bad index)."""
    region = None
    if isinstance(data, dict) and "region" in data:
        data = dict(data)
        region = clean_region(data.pop("region"))
    if org is not None and isinstance(data, dict) and "tags" in data:
        data = dict(data)
        data["tags"], errors = resolve_tag_refs(data["tags"], org=org)
        if errors:
            raise ValidationError(errors)
    return data, region


def phone_param(raw: str, request, org) -> str:
    """A phone in a path or query (any format; ?region= reads a national one) as E.164, or a 400."""
    region = clean_region(request.query_params.get("region")) or org.default_region
    try:
        return normalize_phone(raw, region).e164
    except NormalizationError as exc:
        raise ValidationError({"phone": [str(exc)]}) from None


class ProviderUnavailable(APIException):
    status_code = 503
    default_detail = "The textability provider is not available."
    default_code = "provider_unavailable"


class ReadingPost(HasOrgScope):
    """A POST that only reads (POST /contacts/verify looks a number up): a read key may call it."""

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        request_organization(request)
        return True


class OrgViewMixin:
    """Every organization-scoped API view: its organization, and no NUL character in its input."""

    @property
    def org(self):
        return request_organization(self.request)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        reject_nul_characters(request)


class ContactViewSet(OrgViewMixin, viewsets.GenericViewSet):
    """Contacts: CRUD with merge on create, tags, consent, activity, bulk operations."""

    serializer_class = ContactSerializer
    lookup_value_regex = UUID_RE
    parser_classes = [JSONParser]  # nested fields (custom_fields, preferences) have no form encoding

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no organization
            return Contact.objects.none()
        return Contact.objects.for_org(self.org).with_related()

    def get_object(self):
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])

    def get_contact_for_write(self):
        return get_object_or_404(Contact.objects.for_org(self.org).select_for_update(), pk=self.kwargs["pk"])

    def represent(self, contact, *, status_code=200, outcome=None, warnings=None):
        contact = Contact.objects.with_related().get(pk=contact.pk)
        data = ContactSerializer(contact).data
        if outcome:
            data["_outcome"] = outcome
        if warnings:
            data["_warnings"] = warnings
        return Response(data, status=status_code)

    # --- list / count ----------------------------------------------------------------------
    @extend_schema(parameters=[*filter_parameters(), *paging_parameters(CONTACT_SORTS), PRIORITY_LIST_PARAM],
                   responses=ContactPageSerializer,
                   description="sort=name|-name orders by last name, first name (case- and accent-insensitive), "
                   "then id; every sort pages with cursors.")
    def list(self, request):
        qs, ignored = filter_contacts(self.get_queryset(), request.query_params, org=self.org,
                                      extra_allowed=("priority_list",))
        page = paginate_contacts(request, qs.api_rows(), org=self.org)
        body = page.body(ContactSerializer(page.items, many=True).data)
        if ignored:
            body["ignored_filters"] = ignored
        return Response(body)

    @extend_schema(parameters=[*filter_parameters(), EXACT_PARAMETER], responses=CountAnswerSerializer)
    @action(detail=False, methods=["get"])
    def count(self, request):
        exact = parse_exact(request.query_params)
        qs, ignored = filter_contacts(Contact.objects.for_org(self.org), request.query_params, org=self.org,
                                      extra_allowed=("exact",))
        body = count_answer(qs, exact=exact, count=contacts_count_plan(request.query_params, org=self.org))
        if ignored:
            body["ignored_filters"] = ignored
        return Response(body)

    # --- CRUD ------------------------------------------------------------------------------
    @extend_schema(
        request=ContactInputSerializer,
        responses={201: ContactWithOutcomeSerializer, 200: ContactWithOutcomeSerializer,
                   409: OpenApiResponse(description="The phone and the email belong to two contacts.")},
        description="Creates a contact, or merges into the one with the same phone (else email): fields "
        "given win, tags are added, custom fields merge. `_outcome` says which.",
    )
    def create(self, request):
        org = self.org
        body, region = split_region(request.data, self.org)
        try:
            data, warnings = clean_contact_payload(body, org=org, region=region)
            contact, outcome = services.contact_create_or_merge(org=org, data=data, actor=api_actor(request))
        except PayloadError as exc:
            raise payload_error(exc) from None
        except services.ServiceError as exc:
            raise service_error(exc) from None
        return self.represent(contact, status_code=201 if outcome == "created" else 200, outcome=outcome,
                              warnings=warnings)

    def retrieve(self, request, pk=None):
        return Response(ContactSerializer(self.get_object()).data)

    def _update(self, request, contact_lookup=None):
        """PATCH and PUT alike, by id or by phone: the fields given (design §0)."""
        org = self.org
        overwrite = parse_bool_param(request.query_params, "overwrite")
        body, region = split_region(request.data, self.org)
        with transaction.atomic():
            contact = (contact_lookup or self.get_contact_for_write)()
            try:
                data, warnings = clean_contact_payload(body, org=org, contact=contact, region=region)
                services.contact_update(contact=contact, data=data, actor=api_actor(request),
                                        overwrite_custom=overwrite)
            except PayloadError as exc:
                raise payload_error(exc) from None
            except services.ServiceError as exc:
                raise service_error(exc) from None
        return self.represent(contact, warnings=warnings)

    @extend_schema(
        request=ContactInputSerializer, responses=ContactSerializer,
        parameters=[OpenApiParameter("overwrite", OpenApiTypes.BOOL, description="Replace custom_fields.")],
        description="Updates the fields given; `tags` replace the set; custom fields merge (null deletes) "
        "unless ?overwrite=true. Consent changes only when opted_out/preferences are given.",
    )
    def partial_update(self, request, pk=None):
        return self._update(request)

    @extend_schema(
        request=ContactInputSerializer, responses=ContactSerializer,
        parameters=[OpenApiParameter("overwrite", OpenApiTypes.BOOL, description="Replace custom_fields.")],
        description="The same as PATCH (as Orbit, Qlara and Heymarket define PUT): updates only the fields "
        "given; `tags` replace the set; custom fields merge unless ?overwrite=true. Omitted fields are kept.",
    )
    def update(self, request, pk=None):
        return self._update(request)

    @extend_schema(parameters=[OpenApiParameter("permanent", OpenApiTypes.BOOL,
                                                description="Delete for good at once (else: the trash).")])
    def destroy(self, request, pk=None):
        if parse_bool_param(request.query_params, "permanent"):  # consent: contacts.trash
            from .trash import contact_purge

            with transaction.atomic():
                contact = get_object_or_404(Contact.objects.for_org(self.org, trashed=True).select_for_update(), pk=pk)
                contact_purge(contact=contact, actor=api_actor(request))
            return Response(status=204)
        contact = self.get_object()
        services.contact_delete(contact=contact, actor=api_actor(request))
        return Response(status=204)

    # --- lookups -----------------------------------------------------------------------------
    def _by_phone(self, phone, queryset):
        e164 = phone_param(phone, self.request, self.org)
        contact = queryset.filter(phone=e164).first()
        if contact is None:
            raise NotFound(f"No contact has the phone {e164}.")
        return contact

    @extend_schema(methods=["GET"], responses=ContactSerializer, parameters=[REGION_PARAM])
    @extend_schema(methods=["PATCH"], request=ContactInputSerializer, responses=ContactSerializer,
                   parameters=[REGION_PARAM, OVERWRITE_PARAM],
                   description="PATCH /contacts/{id} for the contact with this phone (any format).")
    @extend_schema(methods=["DELETE"], parameters=[REGION_PARAM], responses={204: None},
                   description="DELETE /contacts/{id} for the contact with this phone (any format).")
    @action(detail=False, methods=["get", "patch", "delete"], url_path=r"by-phone/(?P<phone>[^/]+)")
    def by_phone(self, request, phone=None):
        if request.method == "PATCH":
            locked = Contact.objects.for_org(self.org).select_for_update()
            return self._update(request, contact_lookup=lambda: self._by_phone(phone, locked))
        if request.method == "DELETE":
            services.contact_delete(contact=self._by_phone(phone, Contact.objects.for_org(self.org)),
                                    actor=api_actor(request))
            return Response(status=204)
        return Response(ContactSerializer(self._by_phone(phone, self.get_queryset())).data)

    @extend_schema(request=VerifyInputSerializer, responses={200: VerifySerializer, 503: None},
                   description="Runs the configured textability provider on this phone now (at most "
                   f"{VERIFY_TIMEOUT} s) and records the answer on the contact with that phone, if any. "
                   "A read key may call it.")
    @action(detail=False, methods=["post"])
    def verify(self, request):
        serializer = VerifyInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        region = clean_region(serializer.validated_data.get("region")) or self.org.default_region
        try:
            phone = normalize_phone(serializer.validated_data["phone"], region).e164
        except NormalizationError as exc:
            raise ValidationError({"phone": [str(exc)]}) from None
        try:
            return Response(VerifySerializer(textability_verify(org=self.org, phone=phone)).data)
        except TextabilityConfigError as exc:
            raise ProviderUnavailable(str(exc)) from None

    # --- merge -------------------------------------------------------------------------------
    @extend_schema(request=MergeInputSerializer, responses={200: MergedContactSerializer},
                   description="Folds `contact_ids` into this contact: its non-empty fields win and the "
                   "others fill the empty ones (phone and email included; their other phones and emails "
                   "become secondaries); tags, lists, preferences and events move here; the most "
                   "restrictive consent wins (an opt-out anywhere stays one); custom fields merge; the "
                   "others are deleted, and the `merged` event keeps a snapshot of each. `dry_run`: the "
                   "answer shows what the contact would become and nothing is written.")
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        from .merging import contacts_merge

        serializer = MergeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ids = list(dict.fromkeys(serializer.validated_data["contact_ids"]))
        survivor = self.get_object()
        if survivor.pk in ids:
            raise ValidationError({"contact_ids": ["A contact cannot be merged into itself."]})
        others = list(Contact.objects.for_org(self.org).filter(pk__in=ids))
        unknown = sorted(str(i) for i in set(ids) - {o.pk for o in others})
        if unknown:  # another organization's contact answers as a nonexistent one
            raise ValidationError({"contact_ids": [f"No such contacts in your organization: {', '.join(unknown)}."]})
        dry_run = serializer.validated_data["dry_run"]
        try:
            result = contacts_merge(survivor=survivor, others=others, actor=api_actor(request), dry_run=dry_run)
        except services.ServiceError as exc:
            raise service_error(exc) from None
        body = ContactSerializer(result.survivor).data
        body["merged_ids"], body["dry_run"] = result.merged_ids, dry_run
        return Response(body)

    # --- bulk --------------------------------------------------------------------------------
    @extend_schema(request=BulkInputSerializer, responses=BulkOutputSerializer,
                   description=f"Up to {BULK_MAX} contacts, each created or merged like POST /contacts; "
                   "one outcome per item (an error in one item does not stop the others).")
    @action(detail=False, methods=["post"])
    def bulk(self, request):
        items = request.data.get("contacts") if isinstance(request.data, dict) else None
        if not isinstance(items, list):
            raise ValidationError({"contacts": ["Expected a list of contacts: {\"contacts\": [...]}."]})
        if len(items) > BULK_MAX:
            raise ValidationError({"contacts": [f"At most {BULK_MAX} contacts per call (got {len(items)})."]})
        # lead: a malformed call (an item that is not an object) is a 400 for the call, as its schema says;
        # a bad object is an item's error.
        not_objects = {f"contacts[{i}]": ["Expected a JSON object."] for i, item in enumerate(items)
                       if not isinstance(item, dict)}
        if not_objects:
            raise ValidationError(not_objects)
        org, actor = self.org, api_actor(request)
        definitions = custom_field_definitions(org)
        results, valid = [None] * len(items), []
        for index, item in enumerate(items):
            try:
                item, region = split_region(item, org)
                data, warnings = clean_contact_payload(item, org=org, definitions=definitions, region=region)
                valid.append((index, data, warnings))
            except PayloadError as exc:
                results[index] = {"index": index, "outcome": "error", **envelope_for(payload_error(exc))}
            except ValidationError as exc:  # a bad region
                results[index] = {"index": index, "outcome": "error", **envelope_for(exc)}
        # Every valid item through the write engine at once: one outcome each, a bad item an
        # `error` item, nothing written for it; the others land together.
        try:
            plans = services.upsert_with_retry(org=org, rows=[data for _, data, _ in valid], actor=actor,
                                               strict=True)
        except IntegrityError:
            raise service_error(services.ServiceError(
                "A concurrent write kept colliding with this batch; send it again.")) from None
        for (index, _, warnings), plan in zip(valid, plans, strict=True):
            if plan.error:
                results[index] = {"index": index, "outcome": "error", **envelope_for(service_error(plan.error))}
                continue
            result = {"index": index, "outcome": plan.outcome if plan.outcome in ("created", "restored") else "merged",
                      "id": str(plan.contact_id)}
            if warnings:
                result["warnings"] = warnings
            results[index] = result
        return Response({"results": results})

    @extend_schema(request=BulkDeleteInputSerializer, responses=DeletedSerializer,
                   description="Deletes `ids`, or everyone but `not_ids` (then `confirm: true` is required).")
    @action(detail=False, methods=["post"], url_path="bulk-delete")
    def bulk_delete(self, request):
        serializer = BulkDeleteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        qs = Contact.objects.for_org(self.org)
        if "ids" in data and "not_ids" in data:
            raise ValidationError({"ids": ["Send ids or not_ids, not both."]})
        if "ids" in data:
            qs = qs.filter(pk__in=data["ids"])
        elif "not_ids" in data:
            if request.data.get("confirm") is not True:  # the JSON boolean: "yes", "1" and 1 are not consent
                raise ValidationError({"confirm": ["not_ids deletes every other contact: add \"confirm\": true."]})
            qs = qs.exclude(pk__in=data["not_ids"])
        else:
            raise ValidationError({"ids": ["Send ids (or not_ids with confirm: true)."]})
        from .trash import contacts_trash_where  # consent: bulk delete means trash

        return Response({"deleted": contacts_trash_where(qs, actor=api_actor(request))})

    def get_permissions(self):
        if self.action == "bulk_delete":
            self.admin_only = True
        if self.action == "verify":
            return [ReadingPost()]
        return super().get_permissions()

    # --- tags --------------------------------------------------------------------------------
    @extend_schema(request=TagsRefInputSerializer, responses=ContactSerializer,
                   description='Adds tags (names or {"tag_id": n}); ones the contact already has are ignored.')
    @action(detail=True, methods=["post"])
    def tags(self, request, pk=None):
        body = request.data
        if isinstance(body, dict) and "tags" in body:
            tags, errors = resolve_tag_refs(body["tags"], org=self.org)
            if errors:
                raise ValidationError(errors)
            body = {**body, "tags": tags}
        serializer = TagsInputSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        try:
            names = [normalize_tag(t) for t in serializer.validated_data["tags"]]
        except NormalizationError as exc:
            raise ValidationError({"tags": [str(exc)]}) from None
        with transaction.atomic():
            contact = self.get_contact_for_write()
            services.contact_add_tags(contact=contact, names=names, actor=api_actor(request))
        return self.represent(contact)

    @extend_schema(request=None, responses={200: ContactSerializer}, description="Removes one tag (case-insensitive).")
    @action(detail=True, methods=["delete"], url_path=r"tags/(?P<tag>[^/]+)")
    def remove_tag(self, request, pk=None, tag=None):
        try:
            tag = normalize_tag(tag)
        except NormalizationError as exc:
            raise ValidationError({"tag": [str(exc)]}) from None
        with transaction.atomic():
            contact = self.get_contact_for_write()
            removed = services.contact_remove_tags(contact=contact, names=[tag], actor=api_actor(request))
        if not removed:
            raise NotFound(f"The contact has no tag '{tag}'.")
        return self.represent(contact)

    # --- consent -----------------------------------------------------------------------------
    @extend_schema(request=PreferencesInputSerializer, responses=ContactSerializer,
                   description="Sets channel preferences: {\"sms\": false, \"email\": true}. Leaves the "
                   "global opted_out flag alone.")
    @action(detail=True, methods=["put"])
    def preferences(self, request, pk=None):
        try:
            prefs = clean_preferences(request.data)
        except NormalizationError as exc:
            raise ValidationError({"preferences": [str(exc)]}) from None
        if not prefs:
            raise ValidationError({"preferences": ["Give at least one channel."]})
        with transaction.atomic():
            contact = self.get_contact_for_write()
            services.contact_set_preferences(contact=contact, preferences=prefs, actor=api_actor(request))
        return self.represent(contact)

    @extend_schema(request=OptOutInputSerializer, responses={200: ContactSerializer, 201: ContactSerializer},
                   description="Opts a phone or an email (exactly one) out globally, or of one channel. An "
                   "unknown phone or email creates an opted-out contact (201).")
    @action(detail=False, methods=["post"], url_path="opt-out")
    def opt_out(self, request):
        serializer = OptOutInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        org, given = self.org, serializer.validated_data
        phone = email = None
        try:
            if "phone" in given:
                region = clean_region(given.get("region")) or org.default_region
                phone = normalize_phone(given["phone"], region).e164
            else:
                email = clean_email(given["email"])
        except NormalizationError as exc:
            raise ValidationError({"phone" if "phone" in given else "email": [str(exc)]}) from None
        try:
            contact, created = services.opt_out_phone(
                org=org, phone=phone, email=email, channel=given.get("channel"), actor=api_actor(request)
            )
        except services.ServiceError as exc:
            raise service_error(exc) from None
        return self.represent(contact, status_code=201 if created else 200)

    @extend_schema(
        parameters=[OpenApiParameter("channel", OpenApiTypes.STR, enum=Channel.values,
                                     description="Only global opt-outs and this channel's."),
                    OpenApiParameter("search", OpenApiTypes.STR, description=FILTER_DOCS["search"]),
                    *paging_parameters(CONTACT_SORTS), PRIORITY_LIST_PARAM],
        responses=ContactPageSerializer,
    )
    @action(detail=False, methods=["get"], url_path="opt-outs")
    def opt_outs(self, request):
        channel = request.query_params.get("channel")
        if channel is not None and channel not in Channel.values:
            raise ValidationError({"channel": [f"Unknown channel '{channel}'; channels: {', '.join(Channel.values)}."]})
        unknown = set(request.query_params) - {"channel", "search", "limit", "cursor", "offset", "sort",
                                               "include_total", "priority_list"}
        if unknown:
            raise ValidationError({name: [f"Unknown parameter '{name}'."] for name in sorted(unknown)})
        qs = self.get_queryset().opted_out_of(channel).search(request.query_params.get("search", ""))
        page = paginate_contacts(request, qs.api_rows(), org=self.org)
        return Response(page.body(ContactSerializer(page.items, many=True).data))

    # --- activity ------------------------------------------------------------------------------
    @extend_schema(methods=["GET"], parameters=paging_parameters(("-id", "id")), responses=EventPageSerializer)
    @extend_schema(methods=["POST"], request=EventInputSerializer, responses={201: EventSerializer},
                   description="Records a message_* event from an external system.")
    @action(detail=True, methods=["get", "post"])
    def activity(self, request, pk=None):
        contact = get_object_or_404(Contact.objects.for_org(self.org), pk=pk)
        if request.method == "POST":
            serializer = EventInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            body = (data.get("data") or {}).get("body")
            if data["kind"] == ContactEvent.Kind.MESSAGE_RECEIVED and isinstance(body, str):
                # consent: the same code as POST /inbound (keywords), on this contact
                from .consent_views import inbound_on_contact

                return inbound_on_contact(request, contact, data)
            event = services.record_event(contact, data["kind"], api_actor(request), data.get("data") or {},
                                          at=data.get("occurred_at") or timezone.now())
            return Response(EventSerializer(event).data, status=status.HTTP_201_CREATED)
        qs = ContactEvent.objects.filter(contact=contact).select_related("actor_user", "actor_api_key")
        page = paginate(request, qs, sorts=("-id", "id"))
        return Response(page.body(EventSerializer(page.items, many=True).data))


class CustomFieldViewSet(OrgViewMixin, viewsets.ModelViewSet):
    """Typed custom field definitions. A contact's custom_fields may use the key or the integer id."""

    serializer_class = CustomFieldSerializer
    parser_classes = [JSONParser]
    http_method_names = ["get", "post", "put", "patch", "delete"]

    lookup_value_regex = r"[0-9]{1,18}"  # ASCII: \d also matches "٣"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no organization
            return CustomField.objects.none()
        return CustomField.objects.for_org(self.org)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "org": self.org}

    @extend_schema(parameters=paging_parameters(("id", "-id")), responses=CustomFieldPageSerializer)
    def list(self, request):
        page = paginate(request, self.get_queryset(), sorts=("id", "-id"))
        return Response(page.body(CustomFieldSerializer(page.items, many=True).data))

    # A number or date definition gets an expression index, built after the commit by a job
    # (contacts.custom_fields); a changed key or type or a deletion replaces or drops it.
    def perform_create(self, serializer):
        serializer.save(organization=self.org)
        custom_field_indexes_schedule(org_id=self.org.pk)

    def perform_update(self, serializer):
        serializer.save()
        custom_field_indexes_schedule(org_id=self.org.pk)

    def perform_destroy(self, instance):
        instance.delete()
        custom_field_indexes_schedule(org_id=self.org.pk)


TAG_SORTS = ("name", "-name", "id", "-id")


class TagViewSet(OrgViewMixin, viewsets.GenericViewSet):
    """The organization's tags (Heymarket's tags resource). Renaming changes every contact's tag;
    deleting removes it from every contact (one tags_removed event each)."""

    serializer_class = TagSerializer
    parser_classes = [JSONParser]
    lookup_value_regex = r"[0-9]{1,18}"  # ASCII: \d also matches "٣"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no organization
            return Tag.objects.none()
        return Tag.objects.for_org(self.org)

    def get_object(self):
        return self.counted([get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])])[0]

    def counted(self, tags: list) -> list:
        """`tags` with their `contact_count` set: one query (tag_contact_counts)."""
        counts = tag_contact_counts([tag.pk for tag in tags], org=self.org)
        for tag in tags:
            tag.contact_count = counts[tag.pk]
        return tags

    def _valid_name(self, request) -> str:
        serializer = TagSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data["name"]

    @extend_schema(parameters=paging_parameters(TAG_SORTS), responses=TagPageSerializer)
    def list(self, request):
        unknown = set(request.query_params) - {"limit", "cursor", "offset", "sort", "include_total"}
        if unknown:
            raise ValidationError({name: [f"Unknown parameter '{name}'."] for name in sorted(unknown)})
        page = paginate(request, self.get_queryset(), sorts=TAG_SORTS)
        return Response(page.body(TagSerializer(self.counted(page.items), many=True).data))

    def retrieve(self, request, pk=None):
        return Response(TagSerializer(self.get_object()).data)

    @extend_schema(request=TagSerializer, responses={201: TagSerializer})
    def create(self, request):
        try:
            tag = tag_create(org=self.org, name=self._valid_name(request))
        except NormalizationError as exc:
            raise ValidationError({"name": [str(exc)]}) from None
        except services.ServiceError as exc:
            raise service_error(exc) from None
        return Response(TagSerializer(self.counted([tag])[0]).data, status=201)

    @extend_schema(request=TagSerializer, responses=TagSerializer, description="Renames the tag (its key follows).")
    def partial_update(self, request, pk=None):
        tag = self.get_object()
        try:
            tag_rename(tag=tag, name=self._valid_name(request))
        except NormalizationError as exc:
            raise ValidationError({"name": [str(exc)]}) from None
        except services.ServiceError as exc:
            raise service_error(exc) from None
        return Response(TagSerializer(self.get_object()).data)

    @extend_schema(responses={204: None}, description="Removes the tag from every contact, then deletes it.")
    def destroy(self, request, pk=None):
        tag_delete(tag=self.get_object(), actor=api_actor(request))
        return Response(status=204)
