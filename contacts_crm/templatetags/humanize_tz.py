"""Template filters for the admin's one date format and shares ("12.5%")."""

from django import template

from contacts_crm.admin_mixins import admin_datetime as _admin_datetime

register = template.Library()


@register.filter
def admin_datetime(value):
    return _admin_datetime(value)


@register.filter
def percent(value):
    try:
        return f"{float(value) * 100:.1f}%"
    except (TypeError, ValueError):
        return ""
