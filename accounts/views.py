"""Account pages beside allauth's: the profile, the download of one's data, account deletion.

Every change goes through accounts.services (the API's `me/` reaches the same functions), and
the domain's ApplicationError comes back to the person as form errors.
"""

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from accounts import selectors, services
from accounts.forms import DeleteAccountForm, ProfileForm
from realio.errors import ApplicationError


def form_add_application_error(form, exc):
    """Show a service's ApplicationError on the form: per field where it names one of the form's."""
    if not exc.errors:
        form.add_error(None, exc.detail)
        return
    for field, field_messages in exc.errors.items():
        target = field if field in form.fields else None
        for message in field_messages:
            form.add_error(target, message)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    if request.method == "POST":
        form = ProfileForm(request.POST, request.FILES, user=request.user)
        if form.is_valid():
            try:
                changes = form.changes()
            except ApplicationError as exc:  # the uploaded file is no usable image
                form.add_error("avatar", exc.detail)
            else:
                try:
                    services.user_update(user=request.user, **changes)
                except ApplicationError as exc:
                    form_add_application_error(form, exc)
                else:
                    messages.success(request, _("Your profile has been saved."))
                    return redirect("profile")
    else:
        form = ProfileForm(user=request.user)
    agent_profile = getattr(request.user, "agent_profile", None) if request.user.is_agent else None
    return render(request, "accounts/profile.html", {"form": form, "agent_profile": agent_profile})


@never_cache
@login_required
@require_GET
def profile_export(request):
    data = selectors.user_export(user=request.user)
    response = JsonResponse(data, json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = 'attachment; filename="realio-my-data.json"'
    return response


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def profile_delete(request):
    form = DeleteAccountForm(request.POST if request.method == "POST" else None, request=request)
    if request.method == "POST" and form.is_valid():
        services.user_delete(user=request.user)
        logout(request)
        messages.success(request, _("Your account has been deleted and your personal data erased."))
        return redirect("home")
    return render(request, "accounts/profile_delete.html", {"form": form})
