from datetime import datetime, time, timedelta

from django.contrib import admin, messages
from django.core.cache import cache
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from .admin_mixins import OrgScopedAdmin
from .models import ApiKey, Membership, Organization
from .tenancy import user_organization


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
        count = ApiKey.revoke_many(queryset)
        self.message_user(request, f"Revoked {count} key(s).")

    def has_delete_permission(self, request, obj=None):
        # Keys are revoked, not deleted, so that the timeline can still name them.
        return False


# --- the admin index: the organization at a glance -------------------------------------------
# Staff of an organization see its contact count, consent shares, last imports and opt-outs per
# week above the app list. Big organizations get PostgreSQL's estimates (the contacts
# changelist's paginator), and the weekly chart is cached for INDEX_CACHE_SECONDS.
INDEX_WEEKS = 12
INDEX_IMPORTS = 5
INDEX_CACHE_SECONDS = 300


def _count(queryset) -> tuple[int, bool]:
    from contacts.admin import EstimatedCountPaginator

    paginator = EstimatedCountPaginator(queryset.order_by("pk"), 1)
    return paginator.count, getattr(paginator, "estimated", False)


def opt_outs_per_week(org, *, weeks: int = INDEX_WEEKS, now=None) -> list[tuple]:
    """[(week start date, global opt-outs that week)] for the last `weeks` weeks, oldest first.

    One query over the organization's opted-out contacts (the (organization, opted_out, ...)
    index), grouped in Python by ISO week in the current time zone."""
    from contacts.models import Contact

    now = timezone.localtime(now or timezone.now())
    this_monday = (now - timedelta(days=now.weekday())).date()
    starts = [this_monday - timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]
    since = timezone.make_aware(datetime.combine(starts[0], time.min))
    counts = dict.fromkeys(starts, 0)
    stamps = Contact.objects.for_org(org).filter(opted_out=True, opted_out_at__gte=since).values_list(
        "opted_out_at", flat=True)
    for stamp in stamps.iterator(chunk_size=5000):
        day = timezone.localtime(stamp).date()
        week = day - timedelta(days=day.weekday())
        if week in counts:
            counts[week] += 1
    return list(counts.items())


def opt_out_chart_svg(weeks: list[tuple]) -> str:
    """A small bar chart (inline SVG, no script, no CDN) of opt-outs per week."""
    width, height, gap, top, bottom = 360, 110, 4, 14, 18
    peak = max((n for _, n in weeks), default=0) or 1
    bar = (width - gap * (len(weeks) - 1)) / max(len(weeks), 1)
    bars = []
    for i, (week, count) in enumerate(weeks):
        h = (height - top - bottom) * count / peak
        x, y = i * (bar + gap), height - bottom - h
        bars.append(format_html(
            '<g><title>week of {}: {} opt-out{}</title>'
            '<rect x="{}" y="{}" width="{}" height="{}" fill="#417690"></rect>'
            '<text x="{}" y="{}" font-size="9" text-anchor="middle">{}</text></g>',
            week.isoformat(), count, "" if count == 1 else "s", f"{x:.1f}", f"{y:.1f}", f"{bar:.1f}",
            f"{max(h, 0.5):.1f}", f"{x + bar / 2:.1f}", f"{y - 3:.1f}", count if count else ""))
    labels = format_html(
        '<text x="0" y="{}" font-size="9">{}</text><text x="{}" y="{}" font-size="9" text-anchor="end">{}</text>',
        height - 4, weeks[0][0].strftime("%b %d") if weeks else "", width, height - 4,
        "this week")
    return format_html(
        '<svg id="opt-out-chart" role="img" aria-label="Opt-outs per week, last {} weeks" width="{}" height="{}" '
        'viewBox="0 0 {} {}" xmlns="http://www.w3.org/2000/svg">{}{}</svg>',
        len(weeks), width, height, width, height, mark_safe("".join(bars)), labels)  # noqa: S308 (built by format_html)


def index_context(request) -> dict:
    org = user_organization(request.user)
    if org is None or not request.user.is_staff:
        return {}
    from contacts.models import Contact
    from imports.admin import import_status
    from imports.models import ImportJob

    contacts = Contact.objects.for_org(org)
    total, estimated = _count(contacts)
    opted_out, _ = _count(contacts.filter(opted_out=True))
    textable, _ = _count(contacts.textable("true"))
    key = f"admin-index-opt-outs:{org.pk}"
    weeks = cache.get(key)
    if weeks is None:
        weeks = opt_outs_per_week(org)
        cache.set(key, weeks, INDEX_CACHE_SECONDS)
    return {
        "crm_org": org,
        "crm_contacts": total, "crm_estimated": estimated,
        "crm_opted_out_share": opted_out / total if total else 0,
        "crm_textable_share": textable / total if total else 0,
        "crm_imports": [(job, import_status(job)[1]) for job in ImportJob.objects.for_org(org)[:INDEX_IMPORTS]],
        "crm_chart": opt_out_chart_svg(weeks), "crm_weeks": weeks,
        "crm_opt_outs_total": sum(n for _, n in weeks),
    }


_django_index = admin.site.index


def crm_index(request, extra_context=None):
    return _django_index(request, {**index_context(request), **(extra_context or {})})


admin.site.index = crm_index
admin.site.site_header = "contacts_crm"
admin.site.site_title = "contacts_crm admin"
admin.site.index_title = "Your organization"
admin.site.site_url = None  # there is no public site: the link led to a 404
# The nav sidebar takes 300 px of every page: without it the contact list fits 1366 px wide.
# The index and the breadcrumbs lead everywhere it did.
admin.site.enable_nav_sidebar = False
