"""Notification pages: the list (mark read, mark all read — with or without JavaScript), the
preferences page, one-click unsubscribe from an email, and the SMS provider's status callback."""

import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from notifications import kinds, selectors, services
from notifications.backends.sms import signature_valid
from realio.errors import ApplicationError, NotFound

PAGE_SIZE = 20


@login_required
def notification_list(request):
    page = Paginator(selectors.notifications_of(request.user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "notifications/list.html", {
        "page": page, "unread": selectors.unread_count(request.user.pk)})


@login_required
@require_POST
def notification_read(request, pk):
    try:
        notification = services.notification_mark_read(user=request.user, notification_id=pk)
    except NotFound as exc:
        if request.headers.get("HX-Request"):
            return HttpResponse(exc.detail, status=404)
        messages.error(request, exc.detail)
        return redirect("notifications")
    if request.headers.get("HX-Request"):
        return render(request, "notifications/_item.html", {"notification": notification})
    if request.POST.get("open") and notification.url.startswith("/") and not notification.url.startswith("//"):
        return redirect(notification.url)
    return redirect(_back(request))


@login_required
@require_POST
def notification_read_all(request):
    count = services.notifications_mark_all_read(user=request.user)
    if count:
        messages.success(request, _("All notifications are marked read."))
    return redirect("notifications")


def _back(request):
    page = request.POST.get("page", "")
    return f"/notifications/?page={int(page)}" if page.isdigit() else "/notifications/"


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request):
    error = None
    if request.method == "POST":
        choices = {kind: {channel: f"{kind}:{channel}" in request.POST for channel in kinds.OPTIONAL_CHANNELS}
                   for kind in kinds.KINDS}
        quiet = None
        if request.POST.get("quiet_enabled"):
            try:
                quiet = {"start": datetime.time.fromisoformat(request.POST.get("quiet_start", "")),
                         "end": datetime.time.fromisoformat(request.POST.get("quiet_end", ""))}
            except ValueError:
                error = _("Give the quiet hours as HH:MM.")
        if error is None:
            try:
                services.preferences_update(user=request.user, choices=choices, quiet_hours=quiet)
            except ApplicationError as exc:
                error = exc.detail
        if error is None:
            messages.success(request, _("Your notification settings are saved."))
            return redirect("notification_preferences")
    table = selectors.preferences_table(request.user)
    return render(request, "notifications/preferences.html", {
        "table": table, "channels": [(c.value, c.label) for c in kinds.OPTIONAL_CHANNELS], "error": error,
    }, status=400 if error else 200)


@csrf_exempt  # the token is the permission; mail providers POST here without a session (RFC 8058)
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token):
    """GET asks to confirm (a mail scanner's visit changes nothing); POST — the button, or the
    mail client's one-click `List-Unsubscribe=One-Click` — does it."""
    if request.method == "POST":
        try:
            labels = services.unsubscribe(token=token)
        except ApplicationError as exc:
            return render(request, "notifications/unsubscribe.html", {"token": token, "error": exc},
                          status=exc.status_code)
        return render(request, "notifications/unsubscribe.html", {"done": True, "labels": labels})
    return render(request, "notifications/unsubscribe.html", {"token": token})


@csrf_exempt  # signed by the provider (X-Twilio-Signature), not by a session
@require_POST
def sms_status(request):
    """Twilio's status callback: updates the SMS delivery; 403 unless the signature verifies."""
    url = settings.NOTIFICATIONS_SMS_STATUS_CALLBACK_URL
    if not signature_valid(url, request.POST, request.headers.get("X-Twilio-Signature", ""),
                           settings.TWILIO_AUTH_TOKEN):
        return HttpResponseForbidden("Invalid signature.")
    services.sms_status_update(message_id=request.POST.get("MessageSid", ""),
                               provider_status=request.POST.get("MessageStatus", ""),
                               error_code=request.POST.get("ErrorCode", ""))
    return HttpResponse(status=204)
