"""`{% hub_dashboard %}`: the operator's overview on the admin's front page."""

from __future__ import annotations

from typing import Any

from django import template

from flickrhub.dashboard import dashboard

register = template.Library()


@register.inclusion_tag("admin/hub_dashboard.html", takes_context=True)
def hub_dashboard(context: template.Context) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("jobs.view_job"):
        return {"show": False}
    return {"show": True, **dashboard()}
