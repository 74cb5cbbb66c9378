from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html

from .admin_mixins import OrgScopedAdmin
from .models import ApiKey, Membership, Organization


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "default_region", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    # Tenants are managed by superusers only.
    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(OrgScopedAdmin):
    list_display = ["user", "role"]
    admin_role_required = True
    autocomplete_fields = ["user"]

    def has_add_permission(self, request):
        return request.user.is_superuser


@admin.register(ApiKey)
class ApiKeyAdmin(OrgScopedAdmin):
    list_display = ["name", "prefix", "scope", "status", "created_at", "last_used_at"]
    list_filter = ["scope"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_at", "created_by", "last_used_at", "revoked_at"]
    actions = ["revoke_keys"]
    admin_role_required = True

    @admin.display(description="Status")
    def status(self, obj):
        if obj.revoked_at:
            return format_html('<span style="color:#b00">revoked {}</span>', obj.revoked_at.date())
        return "active"

    def get_fields(self, request, obj=None):
        fields = ["name", "scope"]
        if request.user.is_superuser and obj is None:
            fields.insert(0, "organization")
        if obj is not None:
            fields += self.readonly_fields
        return fields

    def get_readonly_fields(self, request, obj=None):
        # A key's scope is part of what was handed out: revoke and create another to change it.
        return [*self.readonly_fields, "scope"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        org = obj.organization if obj.organization_id else self.request_org(request)
        key, raw = ApiKey.generate(organization=org, name=obj.name, scope=obj.scope, created_by=request.user)
        obj.pk = key.pk
        obj.__dict__.update({f.attname: getattr(key, f.attname) for f in ApiKey._meta.concrete_fields})
        obj._state.adding = False
        messages.warning(
            request,
            format_html(
                "Copy this API key now, it will not be shown again: <code id='new-api-key'>{}</code>", raw
            ),
        )

    @admin.action(description="Revoke selected API keys")
    def revoke_keys(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} key(s).")

    def has_delete_permission(self, request, obj=None):
        # Keys are revoked, not deleted, so that the timeline can still name them.
        return False
