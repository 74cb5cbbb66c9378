"""Tenancy in the admin: a staff user sees and touches only their organization's rows."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.utils import timezone

from .models import Membership
from .tenancy import user_organization, user_role

# The admin's one date format. Times are in the current time zone (settings.TIME_ZONE: the
# organizations' zone until they get one of their own), named once in the page header.
ADMIN_DATETIME_FORMAT = "%Y-%m-%d %H:%M"
ADMIN_DATE_FORMAT = "%Y-%m-%d"


def admin_datetime(value) -> str:
    """A datetime as the admin shows it everywhere ("2026-12-01 14:05"), or "" for None."""
    if value is None:
        return ""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return value.strftime(ADMIN_DATETIME_FORMAT)


def admin_time_zone_name() -> str:
    return timezone.get_current_timezone_name()


class OrgScopedAdmin(admin.ModelAdmin):
    """For models with an `organization` FK.

    Superusers see everything, with an organization filter and column. Staff members of an
    organization see their organization's rows only; a row of another organization is not in the
    queryset, so its change URL answers like a missing object and actions never receive it.
    Permissions follow the membership role (admin/member) rather than per-model Django perms.
    `admin_role_required` restricts the whole model to organization admins (API keys);
    `member_can_delete = False` keeps deletion for organization admins.
    """

    org_field = "organization"
    admin_role_required = False
    member_can_delete = True

    # --- who may do what ---------------------------------------------------------------------
    def _allowed(self, request, *, delete=False):
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        if user.is_superuser:
            return True
        if user_organization(user) is None:
            return False
        role = user_role(user)
        if self.admin_role_required or (delete and not self.member_can_delete):
            return role == Membership.Role.ADMIN
        return True

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request)

    def has_add_permission(self, request):
        return self._allowed(request)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, delete=True)

    # --- what they see -------------------------------------------------------------------------
    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        org = user_organization(request.user)
        if org is None:
            return qs.none()
        return qs.filter(**{self.org_field: org})

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if request.user.is_superuser and self.org_field == "organization":
            filters.insert(0, "organization")
        return filters

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if request.user.is_superuser and self.org_field == "organization" and "organization" not in columns:
            columns.append("organization")
        return columns

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser and self.org_field == "organization":
            exclude.append("organization")
        return exclude

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and request.user.is_superuser and self.org_field == "organization":
            fields.append("organization")  # moving a row between tenants would break its links
        return fields

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        """Choices of org-owned related models are limited to the user's organization."""
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        org = None if request.user.is_superuser else user_organization(request.user)
        model = db_field.related_model
        if org is not None and field is not None:
            if hasattr(model.objects, "for_org"):
                field.queryset = field.queryset.filter(organization=org)
            elif model is request.user.__class__:
                field.queryset = field.queryset.filter(crm_membership__organization=org)
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        org = None if request.user.is_superuser else user_organization(request.user)
        if org is not None and field is not None and hasattr(db_field.related_model.objects, "for_org"):
            field.queryset = field.queryset.filter(organization=org)
        return field

    def request_org(self, request, obj=None):
        """The organization new rows go to (superusers pick one on the form)."""
        if obj is not None and getattr(obj, "organization_id", None):
            return obj.organization
        org = user_organization(request.user)
        if org is None:
            raise PermissionDenied("Your account does not belong to an organization.")
        return org

    def response_action(self, request, queryset):
        """An action posted with an id that is no primary key (a UUID typo, "²") is an error
        message, not a 500: Django would pass it to `pk__in` and fail in to_python."""
        field = self.model._meta.pk
        for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            try:
                field.to_python(value)
                if field.get_internal_type() in ("AutoField", "BigAutoField") and not (
                        value.isascii() and value.isdecimal() and len(value) <= 18):
                    raise ValidationError("not an id")
            except ValidationError:
                shown = value if len(value) <= 40 else value[:37] + "..."
                self.message_user(request, f"'{shown}' is not the id of a {self.model._meta.verbose_name}; "
                                  "nothing was changed.", messages.ERROR)
                return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)

    def save_model(self, request, obj, form, change):
        if not change and self.org_field == "organization" and not getattr(obj, "organization_id", None):
            obj.organization = self.request_org(request)
        super().save_model(request, obj, form, change)
