from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from contacts.counting import EXACT_PARAMETER, CountAnswerSerializer, count_answer, live_links_count, parse_exact
from contacts.models import Contact
from contacts.querysets import load_related
from contacts.serializers import CONTACT_COLUMNS, ContactPageSerializer, ContactSerializer
from contacts.services import ServiceError
from contacts.views import CONTACT_SORTS, PRIORITY_LIST_PARAM, OrgViewMixin, api_actor, paginate_contacts, service_error
from contacts_crm.api.pagination import paginate, paging_parameters
from contacts_crm.api.parsers import BoundedJSONParser as JSONParser  # depth and number bounds
from contacts_crm.api.permissions import HasOrgScope, request_organization

from . import services
from .models import ContactList, ListMembership, Segment
from .rules import RuleError, compile_rules, count_plan
from .serializers import (
    ContactIdsInputSerializer,
    ContactListPageSerializer,
    ContactListSerializer,
    ListMemberPageSerializer,
    ListMemberSerializer,
    MembersAddedSerializer,
    MembersRemovedSerializer,
    PreviewInputSerializer,
    PreviewSerializer,
    SegmentPageSerializer,
    SegmentSerializer,
)

LIST_SORTS = ("id", "-id", "name", "-name", "created_at", "-created_at")
MEMBER_SORTS = ("-added_at", "added_at")
PREVIEW_SAMPLE = 10
PAGING_KEYS = ("limit", "cursor", "offset", "sort", "include_total", "format")


def reject_unknown_params(request, allowed=PAGING_KEYS):
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        raise ValidationError({name: [f"Unknown parameter '{name}'; this endpoint takes: {', '.join(sorted(allowed))}."]
                               for name in unknown})


class _OrgModelViewSet(OrgViewMixin, viewsets.ModelViewSet):
    http_method_names = ["get", "post", "put", "patch", "delete"]
    lookup_value_regex = r"[0-9]{1,18}"  # ASCII: \d also matches "٣"

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["org"] = self.org
        return context

    def perform_create(self, serializer):
        serializer.save(organization=self.org)


class ContactListViewSet(_OrgModelViewSet):
    """Static lists of contacts. Deleting a list never deletes its contacts."""

    serializer_class = ContactListSerializer
    parser_classes = [JSONParser]  # JSON, except the member calls (form and multipart too)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no organization
            return ContactList.objects.none()
        return ContactList.objects.for_org(self.org).annotate(
            member_count=live_links_count(ListMembership, "list"))

    def contact_list(self) -> ContactList:
        return get_object_or_404(ContactList.objects.for_org(self.org), pk=self.kwargs["pk"])

    @extend_schema(parameters=paging_parameters(LIST_SORTS), responses=ContactListPageSerializer)
    def list(self, request):
        reject_unknown_params(request)
        page = paginate(request, self.get_queryset(), sorts=LIST_SORTS)
        return Response(page.body(ContactListSerializer(page.items, many=True).data))

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact_list = serializer.save(organization=self.org)
        contact_list.member_count = 0
        return Response(ContactListSerializer(contact_list).data, status=201)

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        serializer = self.get_serializer(self.get_object(), data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return Response(ContactListSerializer(self.get_object()).data)

    def perform_destroy(self, instance):
        services.list_delete(contact_list=instance)

    @extend_schema(methods=["GET"], parameters=paging_parameters(MEMBER_SORTS), responses=ListMemberPageSerializer,
                   description="The list's contacts, most recently added first, each with `added_at`.")
    @extend_schema(methods=["POST"], request=ContactIdsInputSerializer, responses=MembersAddedSerializer,
                   description="Adds up to 1000 contacts; ones already in the list are counted, not re-added. "
                   "Unknown ids (or another organization's) are a 400 naming them, and nothing is added.")
    @action(detail=True, methods=["get", "post"], parser_classes=[JSONParser, FormParser, MultiPartParser])
    def members(self, request, pk=None):
        contact_list = self.contact_list()
        if request.method == "POST":
            added, already = self._change(request, contact_list, services.list_add_members)
            return Response({"added": added, "already_members": already})
        reject_unknown_params(request)
        # The page as rows (the contact's columns through the join, as Contact.objects.api_rows()
        # fetches them): no model instance per membership or contact.
        qs = (ListMembership.objects.filter(list=contact_list, contact__deleted_at__isnull=True)  # not the trash
              .values("id", "added_at", *(f"contact__{name}" for name in CONTACT_COLUMNS)))
        page = paginate(request, qs, sorts=MEMBER_SORTS)
        contacts = [{**{name: row[f"contact__{name}"] for name in CONTACT_COLUMNS}, "added_at": row["added_at"]}
                    for row in page.items]
        load_related(contacts)
        return Response(page.body(ListMemberSerializer(contacts, many=True).data))

    @extend_schema(request=ContactIdsInputSerializer, responses=MembersRemovedSerializer,
                   description="Removes up to 1000 contacts from the list (the contacts themselves stay).")
    @action(detail=True, methods=["post"], url_path="members/remove",
            parser_classes=[JSONParser, FormParser, MultiPartParser])
    def remove_members(self, request, pk=None):
        removed, absent = self._change(request, self.contact_list(), services.list_remove_members)
        return Response({"removed": removed, "not_members": absent})

    def _change(self, request, contact_list, service):
        data = request.data
        if hasattr(data, "getlist"):  # a form or multipart body: contact_ids repeated, one id each
            ids = data.getlist("contact_ids") if "contact_ids" in data else None
        else:
            ids = data.get("contact_ids") if isinstance(data, dict) else None
        if ids is None:
            raise ValidationError({"contact_ids": ['Expected {"contact_ids": ["<contact id>", ...]}.']})
        try:
            return service(contact_list=contact_list, contact_ids=ids, actor=api_actor(request))
        except ServiceError as exc:
            raise service_error(exc) from None


class PreviewScope(HasOrgScope):
    """POST /segments/preview only reads (its rules travel in a body): a read key may call it."""

    def has_permission(self, request, view):
        if getattr(view, "action", None) == "preview":
            if not (request.user and request.user.is_authenticated):
                return False
            request_organization(request)
            return True
        return super().has_permission(request, view)


class SegmentViewSet(_OrgModelViewSet):
    """Dynamic segments: saved rules, evaluated whenever members are asked for."""

    serializer_class = SegmentSerializer
    permission_classes = [PreviewScope]
    parser_classes = [JSONParser]  # rules are nested JSON

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no organization
            return Segment.objects.none()
        return Segment.objects.for_org(self.org)

    def members_queryset(self, segment):
        try:
            return Contact.objects.for_org(self.org).filter(compile_rules(segment.rules, org=self.org))
        except RuleError as exc:  # rules saved before a validation change, or edited in the database
            raise ValidationError({"rules": [f"This segment's rules are invalid, fix them first: {exc}"]}) from None

    @extend_schema(parameters=paging_parameters(LIST_SORTS), responses=SegmentPageSerializer)
    def list(self, request):
        reject_unknown_params(request)
        page = paginate(request, self.get_queryset(), sorts=LIST_SORTS)
        return Response(page.body(SegmentSerializer(page.items, many=True).data))

    @extend_schema(parameters=[*paging_parameters(CONTACT_SORTS), PRIORITY_LIST_PARAM], responses=ContactPageSerializer,
                   description="The contacts matching the segment's rules now, paged like GET /contacts.")
    @action(detail=True, methods=["get"])
    def members(self, request, pk=None):
        reject_unknown_params(request, allowed=(*PAGING_KEYS, "priority_list"))
        qs = self.members_queryset(self.get_object()).api_rows()
        page = paginate_contacts(request, qs, org=self.org)
        return Response(page.body(ContactSerializer(page.items, many=True).data))

    @extend_schema(parameters=[EXACT_PARAMETER], responses=CountAnswerSerializer,
                   description="How many contacts match the segment now (exact unless `exact=false`).")
    @action(detail=True, methods=["get"])
    def count(self, request, pk=None):
        reject_unknown_params(request, allowed=("exact",))
        exact = parse_exact(request.query_params)
        segment = self.get_object()
        qs = self.members_queryset(segment)  # a RuleError is a 400 here, before count_plan parses
        return Response(count_answer(qs, exact=exact, count=count_plan(segment.rules, org=self.org)))

    @extend_schema(request=PreviewInputSerializer, responses=PreviewSerializer,
                   description="Evaluates rules without saving anything: the count and the first "
                   f"{PREVIEW_SAMPLE} members (most recently updated first). A read key may call it.")
    @action(detail=False, methods=["post"])
    def preview(self, request):
        serializer = PreviewInputSerializer(data=request.data, context={"org": self.org})
        serializer.is_valid(raise_exception=True)
        qs = Contact.objects.for_org(self.org).filter(compile_rules(serializer.validated_data["rules"], org=self.org))
        sample = list(qs.api_rows().order_by("-updated_at", "-id")[:PREVIEW_SAMPLE])
        count = count_answer(qs, exact=None, count=count_plan(serializer.validated_data["rules"], org=self.org))
        return Response({**count, "sample": ContactSerializer(sample, many=True).data})
