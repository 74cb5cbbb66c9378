from __future__ import annotations

from rest_framework import serializers

from contacts.serializers import CONTACT_OUTPUT_FIELDS, ContactSerializer
from contacts_crm.api.strict import StrictJSONMixin

from .models import ContactList, Segment
from .rules import RuleError, validate_rules
from .services import MAX_IDS_PER_CALL


class _UniqueNameMixin:
    def validate_name(self, value):
        value = value.strip()
        if not value:
            raise serializers.ValidationError("A name cannot be blank.")
        model = self.Meta.model
        clash = model.objects.for_org(self.context["org"]).filter(name=value)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError(f"A {model._meta.verbose_name} named '{value}' already exists.")
        return value


class ContactListSerializer(StrictJSONMixin, _UniqueNameMixin, serializers.ModelSerializer):
    member_count = serializers.IntegerField(read_only=True, help_text="How many contacts are in the list.")

    class Meta:
        model = ContactList
        fields = ["id", "name", "description", "member_count", "created_at"]
        read_only_fields = ["id", "member_count", "created_at"]


class ContactListPageSerializer(serializers.Serializer):
    results = ContactListSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
    total = serializers.IntegerField(required=False)


class ListMemberSerializer(ContactSerializer):
    """The contact representation, plus when the contact joined the list."""

    added_at = serializers.DateTimeField(read_only=True)

    class Meta(ContactSerializer.Meta):
        fields = [*CONTACT_OUTPUT_FIELDS, "added_at"]


class ListMemberPageSerializer(serializers.Serializer):
    results = ListMemberSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
    total = serializers.IntegerField(required=False)


class ContactIdsInputSerializer(StrictJSONMixin, serializers.Serializer):
    """Documentation of the body; segments.services checks the ids (and names the bad ones)."""

    contact_ids = serializers.ListField(child=serializers.UUIDField(), max_length=MAX_IDS_PER_CALL,
                                        help_text=f"Up to {MAX_IDS_PER_CALL} contact ids of your organization.")


class MembersAddedSerializer(serializers.Serializer):
    added = serializers.IntegerField(help_text="Contacts added now.")
    already_members = serializers.IntegerField(help_text="Contacts that were in the list already.")


class MembersRemovedSerializer(serializers.Serializer):
    removed = serializers.IntegerField(help_text="Contacts removed now.")
    not_members = serializers.IntegerField(help_text="Contacts that were not in the list.")


RULES_HELP = ('Nested rules: {"op": "and"|"or", "rules": [...]}, {"not": {...}} or a condition '
              '{"field", "operator", "value"}. See docs/segments.md.')


def check_rules(value, org):
    try:
        validate_rules(value, org=org)
    except RuleError as exc:
        raise serializers.ValidationError(str(exc)) from None
    return value


class SegmentSerializer(StrictJSONMixin, _UniqueNameMixin, serializers.ModelSerializer):
    rules = serializers.JSONField(help_text=RULES_HELP)

    class Meta:
        model = Segment
        fields = ["id", "name", "description", "rules", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_rules(self, value):
        return check_rules(value, self.context["org"])


class SegmentPageSerializer(serializers.Serializer):
    results = SegmentSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
    total = serializers.IntegerField(required=False)


class PreviewInputSerializer(StrictJSONMixin, serializers.Serializer):
    rules = serializers.JSONField(help_text=RULES_HELP)

    def validate_rules(self, value):
        return check_rules(value, self.context["org"])


class PreviewSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    sample = ContactSerializer(many=True, help_text="The first 10 members, most recently updated first.")
