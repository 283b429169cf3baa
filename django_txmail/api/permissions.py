"""Who may do what over the API: Django's model permissions, the same as the admin's."""

from __future__ import annotations

from rest_framework import permissions


class ModelPermissions(permissions.DjangoModelPermissions):
    """Django's model permissions, reading included: GET needs ``view_<model>``.

    A view names another permission for a method in ``required_permissions``
    (``{"POST": "send_message"}`` to send).
    """

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request, view) -> bool:
        codename = getattr(view, "required_permissions", {}).get(request.method)
        if codename is None:
            return super().has_permission(request, view)
        if not (request.user and request.user.is_authenticated):
            return False
        opts = self._queryset(view).model._meta
        return request.user.has_perm(f"{opts.app_label}.{codename}")


def can_view(user, model) -> bool:
    """Whether ``user`` may see rows of ``model``, as the admin decides (view or change)."""
    opts = model._meta
    return user.has_perm(f"{opts.app_label}.view_{opts.model_name}") or user.has_perm(
        f"{opts.app_label}.change_{opts.model_name}"
    )
