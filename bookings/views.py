"""Booking pages: the slot picker of a listing (a page of its own and, through htmx, the panel of
the listing's page), `/bookings/` with cancel, reschedule and "add to calendar", and each
viewing's `.ics` for signed-in people.

Every form is a plain POST that works without JavaScript; htmx swaps the picker in place. All
writes go through `bookings.services`; their ApplicationError's detail is shown with its status.
"""

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from bookings import ical, selectors, services
from bookings.forms import BookingForm, ReasonForm, RescheduleForm
from listings.models import Listing
from listings.selectors import listings_visible_to
from realio.errors import ApplicationError, NotFound

PICKER_DAYS = 14
PAST_SHOWN = 100


# --- the slot picker ---------------------------------------------------------------------------

def _parse_day(raw):
    try:
        return dt.date.fromisoformat(raw or "")
    except ValueError:
        return None


def picker_days(*, listing, chosen=None, now=None, viewing=None):
    """The listing's next PICKER_DAYS local days, each with its free times, and the day to show:
    `chosen` when it is one of them, else the first with a free time, else today. For a
    reschedule, `viewing` is left out of the busy times and its length is used."""
    now = now or timezone.now()
    zone = ZoneInfo(listing.time_zone)
    today = now.astimezone(zone).date()
    minutes = int((viewing.end - viewing.start).total_seconds() // 60) if viewing else None
    by_day = services.listing_slots_by_day(listing=listing, first_day=today, days=PICKER_DAYS, now=now,
                                           duration_minutes=minutes,
                                           exclude_viewing_id=viewing.pk if viewing else None)
    days = [{"date": day, "slots": [{"start": start, "end": end, "value": start.isoformat()}
                                    for start, end in slots]}
            for day, slots in by_day.items()]
    by_date = {day["date"]: day for day in days}
    selected = by_date.get(chosen) or next((day for day in days if day["slots"]), days[0])
    for day in days:
        day["selected"] = day is selected
    return {"days": days, "day": selected, "time_zone": listing.time_zone,
            "minutes": settings.BOOKING_DEFAULT_MINUTES}


def _visible_listing(user, pk):
    listing = listings_visible_to(user).select_related("agent").filter(pk=pk).first()
    if listing is None:
        raise Http404(_("No such listing."))
    return listing


def _htmx(request):
    return bool(request.headers.get("HX-Request"))


def _render_picker(request, listing, *, form=None, error=None, status=200, viewing=None):
    """The picker (or, once booked, its confirmation): a partial for htmx, else the whole page."""
    context = {"listing": listing, "form": form or BookingForm(), "error": error, "viewing": viewing,
               "is_owner": request.user.is_authenticated and request.user.pk == listing.agent_id,
               "signed_in": request.user.is_authenticated}
    if viewing is None and not context["is_owner"]:
        context["picker"] = picker_days(listing=listing, chosen=_parse_day(request.GET.get("day")
                                                                            or request.POST.get("day")))
        context["open"] = listing.status == Listing.Status.ACTIVE
    template = "bookings/_picker.html" if _htmx(request) else "bookings/book.html"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _to_sign_in(request, listing):
    """Anonymous visitors sign in and come back to the listing's picker, on the day they chose."""
    back = reverse("listing_page", args=[listing.pk])
    day = _parse_day(request.POST.get("day") or request.GET.get("day"))
    if day:
        back += f"?day={day.isoformat()}"
    login = redirect_to_login(back + "#book")
    if _htmx(request):
        return HttpResponse(status=204, headers={"HX-Redirect": login.url})
    return login


@require_http_methods(["GET", "POST"])
def listing_book(request, pk):
    """GET: the listing's next days and the free times of one (`?day=`); `?booked=<id>` shows
    a booking's confirmation. POST {start, note}: book that time (signed-in customers)."""
    listing = _visible_listing(request.user, pk)
    if request.method == "GET":
        booked = request.GET.get("booked")
        if booked and request.user.is_authenticated:
            try:
                viewing = services.access_viewing(viewing_id=booked, user=request.user)
            except NotFound:
                viewing = None
            if viewing is not None and viewing.listing_id == listing.pk:
                return _render_picker(request, listing, viewing=viewing)
        return _render_picker(request, listing)

    if not request.user.is_authenticated:
        return _to_sign_in(request, listing)
    form = BookingForm(request.POST)
    if not form.is_valid():
        error = _("Pick one of the offered times.") if "start" in form.errors else _(
            "The note can be at most 1,000 characters.")
        return _render_picker(request, listing, form=form, error=error, status=400)
    try:
        viewing = services.booking_request(customer=request.user, listing_id=listing.pk,
                                           start=form.cleaned_data["start"], note=form.cleaned_data["note"])
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    except ApplicationError as exc:
        return _render_picker(request, listing, form=form, error=exc.detail, status=exc.status_code)
    if _htmx(request):
        return _render_picker(request, listing, viewing=viewing)
    return redirect(reverse("listing_book", args=[listing.pk]) + f"?booked={viewing.pk}")


# --- /bookings/ --------------------------------------------------------------------------------

def _list(request, *, status=200):
    mine = selectors.viewings_taking_part(request.user)
    context = {
        "upcoming": list(selectors.upcoming(mine)),
        "past": list(selectors.past(mine)[:PAST_SHOWN]),
        "past_limit": PAST_SHOWN,
        "cancel_form": ReasonForm(),
    }
    return render(request, "bookings/list.html", context, status=status)


@login_required
@require_GET
def viewing_list(request):
    """The signed-in person's viewings, as customer and as agent: upcoming, then past."""
    return _list(request)


def _act(request, pk, act, done_message):
    """Run one service on viewing `pk` and go back to the list; a refusal is shown there with
    its status (409 for an illegal change, 403 when not theirs to make, 404 when not theirs)."""
    try:
        act()
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    except ApplicationError as exc:
        messages.error(request, exc.detail)
        return _list(request, status=exc.status_code)
    messages.success(request, done_message)
    return redirect("bookings")


@login_required
@require_POST
def viewing_cancel(request, pk):
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The reason can be at most 500 characters."))
        return _list(request, status=400)
    return _act(request, pk, lambda: services.booking_cancel(viewing_id=pk, by=request.user,
                                                             reason=form.cleaned_data["reason"]),
                _("The viewing is cancelled."))


@login_required
@require_POST
def viewing_confirm(request, pk):
    return _act(request, pk, lambda: services.booking_confirm(viewing_id=pk, by=request.user),
                _("The viewing is confirmed."))


@login_required
@require_POST
def viewing_decline(request, pk):
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The reason can be at most 500 characters."))
        return _list(request, status=400)
    return _act(request, pk, lambda: services.booking_decline(viewing_id=pk, by=request.user,
                                                              reason=form.cleaned_data["reason"]),
                _("The viewing is declined."))


@login_required
@require_http_methods(["GET", "POST"])
def viewing_reschedule(request, pk):
    """GET: the free times of the viewing's listing (`?day=`); POST {start}: move the viewing
    there (the customer only; its id stays, the old time is freed only if the new one is taken)."""
    try:
        viewing = services.access_viewing(viewing_id=pk, user=request.user)
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    if viewing.customer_id != request.user.pk:
        raise PermissionDenied(_("Only the customer can reschedule a viewing."))
    if not viewing.is_active:
        messages.error(request, _("This viewing can no longer be rescheduled."))
        return redirect("bookings")
    error, status, form = None, 200, RescheduleForm()
    if request.method == "POST":
        form = RescheduleForm(request.POST)
        if form.is_valid():
            try:
                services.booking_reschedule(viewing_id=viewing.pk, by=request.user, start=form.cleaned_data["start"])
            except NotFound as exc:
                raise Http404(exc.detail) from exc
            except ApplicationError as exc:
                error, status = exc.detail, exc.status_code
            else:
                messages.success(request, _("The viewing is moved to its new time."))
                if _htmx(request):
                    return HttpResponse(status=204, headers={"HX-Redirect": reverse("bookings")})
                return redirect("bookings")
        else:
            error, status = _("Pick one of the offered times."), 400
    listing = viewing.listing
    context = {"viewing": viewing, "listing": listing, "error": error, "form": form,
               "picker": picker_days(listing=listing, viewing=viewing,
                                     chosen=_parse_day(request.GET.get("day") or request.POST.get("day"))),
               "open": listing.status == Listing.Status.ACTIVE}
    template = "bookings/_reschedule_picker.html" if _htmx(request) else "bookings/reschedule.html"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
@require_GET
def viewing_calendar(request, pk):
    """The viewing as an iCalendar file, for the customer and the agent."""
    try:
        viewing = services.access_viewing(viewing_id=pk, user=request.user)
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    response = HttpResponse(ical.viewing_ics(viewing), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="viewing-{viewing.pk}.ics"'
    return response

