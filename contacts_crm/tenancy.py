"""One way to scope data to an organization, used by every app.

Every tenant-owned model uses `OrgQuerySet` (directly or through a subclass), so that views,
the admin, commands and jobs all say `Model.objects.for_org(org)`; nothing filters on
`organization_id` by hand.
"""

from __future__ import annotations

from django.db import models


class OrgQuerySet(models.QuerySet):
    def for_org(self, org):
        """Rows of `org` only (an Organization or its id). Never None: that would mean 'all'."""
        if org is None:
            raise ValueError("for_org() needs an organization")
        return self.filter(organization=org)


def user_organization(user):
    """The organization a staff user works in, or None (superusers without a membership)."""
    if not getattr(user, "is_authenticated", False):
        return None
    cached = getattr(user, "_crm_membership", False)
    if cached is False:
        from .models import Membership

        cached = Membership.objects.select_related("organization").filter(user=user).first()
        user._crm_membership = cached
    return cached.organization if cached else None


def user_role(user):
    membership = getattr(user, "_crm_membership", None)
    if membership is None:
        user_organization(user)
        membership = getattr(user, "_crm_membership", None)
    return membership.role if membership else None
