"""Bookings in the admin, where agents keep their agenda and their availability.

Agents see only their own viewings, availability and listings' booking options
(AgentScopedAdmin); staff see everyone's. Nothing here writes a viewing directly: confirm,
decline and cancel are actions calling `bookings.services`, one viewing at a time, and the
availability form is saved through `services.availability_replace` (which validates every
rule), the feed address reset through `services.availability_feed_token_reset`.
"""

import datetime as dt

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import router, transaction
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from bookings import services
from bookings.models import (
    AgentAvailability,
    AvailabilityException,
    AvailabilityRule,
    ListingBookingOption,
    Viewing,
    ViewingStatusChange,
)
from realio.admin import AgentScopedAdmin
from realio.errors import ApplicationError

Status = Viewing.Status


class ChildInline:
    """An inline whose rows belong to the parent object: who may see or change the parent may
    see or change them (the parent's AgentScopedAdmin does the scoping)."""

    def _parent_admin(self):
        return self.admin_site._registry[self.parent_model]

    def has_view_permission(self, request, obj=None):
        return self._parent_admin().has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return obj is not None and self._parent_admin().has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self.has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_add_permission(request, obj)


# --- viewings ---------------------------------------------------------------------------------

class AgendaFilter(admin.SimpleListFilter):
    """Today's and this week's viewings (in the time zone of the person looking), or what is
    still ahead."""

    title = _("agenda")
    parameter_name = "agenda"

    def lookups(self, request, model_admin):
        return [("today", _("Today")), ("week", _("This week")), ("upcoming", _("Upcoming")),
                ("past", _("Past"))]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        now = timezone.now()
        if value == "upcoming":
            return queryset.filter(end__gt=now)
        if value == "past":
            return queryset.filter(end__lte=now)
        today = timezone.localdate(now)
        zone = timezone.get_current_timezone()
        if value == "today":
            first, last = today, today + dt.timedelta(days=1)
        else:  # this week, Monday to Sunday
            first = today - dt.timedelta(days=today.weekday())
            last = first + dt.timedelta(days=7)
        return queryset.filter(start__gte=dt.datetime.combine(first, dt.time(0), tzinfo=zone),
                               start__lt=dt.datetime.combine(last, dt.time(0), tzinfo=zone))


class ViewingHistoryInline(ChildInline, admin.TabularInline):
    """Every status change and reschedule of the viewing, as the services recorded them."""

    model = ViewingStatusChange
    fields = ("at", "old_status", "new_status", "old_start", "new_start", "by", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Viewing)
class ViewingAdmin(AgentScopedAdmin):
    """An agent's viewings: the agenda (today, this week), and confirm / decline / cancel."""

    agent_field = "agent"
    # Read-only to agents: every change is an action through the services.
    agent_actions = ("view",)
    list_display = ("when", "listing", "customer", "status", "note_excerpt")
    list_display_links = ("when",)
    list_filter = (AgendaFilter, "status")
    date_hierarchy = "start"
    search_fields = ("listing__title", "listing__city", "customer__email", "customer__first_name",
                     "customer__last_name")
    list_select_related = ("listing", "customer", "agent")
    ordering = ("start", "id")
    fields = ("listing", "agent", "customer", "when", "start", "end", "status", "note", "cancel_reason",
              "created_at", "requested_at", "updated_at")
    readonly_fields = fields
    inlines = [ViewingHistoryInline]
    actions = ["confirm", "decline", "cancel"]

    change_form_template = "bookings/admin_viewing_change_form.html"

    def get_urls(self):
        from django.urls import path

        return [path("<path:object_id>/act/", self.admin_site.admin_view(self.act_view), name="bookings_viewing_act"),
                *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        viewing = self.get_object(request, object_id)
        moves = []
        if viewing is not None and self.has_act_permission(request):
            if viewing.status == Status.REQUESTED:
                moves = [("confirm", _("Confirm")), ("decline", _("Decline")), ("cancel", _("Cancel"))]
            elif viewing.status == Status.CONFIRMED:
                moves = [("cancel", _("Cancel"))]
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "viewing_moves": moves})

    def act_view(self, request, object_id):
        """POST {move: confirm|decline|cancel, reason}: one viewing moved through the services."""
        viewing = self.get_object(request, object_id)  # scoped: another agent's is None
        if request.method != "POST" or viewing is None or not self.has_act_permission(request):
            raise Http404
        move = request.POST.get("move")
        reason = request.POST.get("reason", "")[:500]
        act = {"confirm": lambda: services.booking_confirm(viewing_id=viewing.pk, by=request.user),
               "decline": lambda: services.booking_decline(viewing_id=viewing.pk, by=request.user, reason=reason),
               "cancel": lambda: services.booking_cancel(viewing_id=viewing.pk, by=request.user, reason=reason)}
        if move not in act:
            raise Http404
        try:
            moved = act[move]()
        except ApplicationError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
        else:
            self.message_user(request, _("The viewing is now %(status)s.") % {
                "status": moved.get_status_display().lower()}, messages.SUCCESS)
        return redirect(reverse("admin:bookings_viewing_change", args=[viewing.pk]))

    @admin.display(description=_("when (the home's time)"), ordering="start")
    def when(self, viewing):
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(viewing.listing.time_zone)
        start, end = viewing.start.astimezone(zone), viewing.end.astimezone(zone)
        return f"{date_format(start, 'D j M Y, H:i')}–{end:%H:%M} {start:%Z}"

    @admin.display(description=_("note"))
    def note_excerpt(self, viewing):
        return (viewing.note[:60] + "…") if len(viewing.note) > 60 else viewing.note

    def view_on_site(self, obj):
        return reverse("listing_page", args=[obj.listing_id])

    # Viewings are booked by customers and moved through the workflow, never typed in or
    # deleted here (a bulk delete would also skip the history and the events).
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_act_permission(self, request):
        """Confirm, decline, cancel: agents (on their own, the list is scoped) and staff."""
        user = request.user
        return self.has_view_permission(request) and (getattr(user, "is_agent", False)
                                                      or self.sees_everything(request))

    def _move(self, request, queryset, act, done_message):
        done = 0
        for viewing in queryset.order_by("start", "pk"):
            try:
                act(viewing)
            except ApplicationError as exc:
                self.message_user(request, f"{viewing.listing.title} ({self.when(viewing)}): {exc.detail}",
                                  messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, done_message(done), messages.SUCCESS)

    @admin.action(description=_("Confirm the selected viewings"), permissions=["act"])
    def confirm(self, request, queryset):
        self._move(request, queryset, lambda v: services.booking_confirm(viewing_id=v.pk, by=request.user),
                   lambda n: ngettext("%(n)d viewing confirmed.", "%(n)d viewings confirmed.", n) % {"n": n})

    @admin.action(description=_("Decline the selected requests"), permissions=["act"])
    def decline(self, request, queryset):
        self._move(request, queryset, lambda v: services.booking_decline(viewing_id=v.pk, by=request.user),
                   lambda n: ngettext("%(n)d request declined.", "%(n)d requests declined.", n) % {"n": n})

    @admin.action(description=_("Cancel the selected viewings"), permissions=["act"])
    def cancel(self, request, queryset):
        self._move(request, queryset, lambda v: services.booking_cancel(viewing_id=v.pk, by=request.user),
                   lambda n: ngettext("%(n)d viewing cancelled.", "%(n)d viewings cancelled.", n) % {"n": n})


# --- availability -----------------------------------------------------------------------------

class AvailabilityRuleForm(forms.ModelForm):
    class Meta:
        model = AvailabilityRule
        fields = ("weekday", "start", "end")
        # Wall-clock hours in the availability's own time zone: not the admin's clock widget,
        # which compares them with the server's time.
        widgets = {"start": forms.TimeInput(format="%H:%M", attrs={"size": 6}),
                   "end": forms.TimeInput(format="%H:%M", attrs={"size": 6})}

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and start >= end:
            self.add_error("end", _("The end must be after the start."))
        return cleaned


class AvailabilityExceptionForm(forms.ModelForm):
    class Meta:
        model = AvailabilityException
        fields = ("date", "kind", "start", "end", "note")
        widgets = {"start": forms.TimeInput(format="%H:%M", attrs={"size": 6}),
                   "end": forms.TimeInput(format="%H:%M", attrs={"size": 6})}

    def clean(self):
        cleaned = super().clean()
        start, end, kind = cleaned.get("start"), cleaned.get("end"), cleaned.get("kind")
        if (start is None) != (end is None) or (start and end and start >= end) \
                or (kind == AvailabilityException.Kind.EXTRA and start is None):
            self.add_error(None, _("Give both times with the end after the start, or neither for a whole day off."))
        return cleaned


class AvailabilityRuleInline(ChildInline, admin.TabularInline):
    model = AvailabilityRule
    form = AvailabilityRuleForm
    fields = ("weekday", "start", "end")
    extra = 0
    max_num = services.MAX_RULES


class AvailabilityExceptionInline(ChildInline, admin.TabularInline):
    model = AvailabilityException
    form = AvailabilityExceptionForm
    fields = ("date", "kind", "start", "end", "note")
    extra = 0
    max_num = services.MAX_EXCEPTIONS


POLICY_FIELDS = ("buffer_minutes", "min_notice_minutes", "horizon_days", "slot_minutes", "instant_booking")


@admin.register(AgentAvailability)
class AgentAvailabilityAdmin(AgentScopedAdmin):
    """An agent's weekly hours (in their time zone), days off and extra hours, booking policy
    and private calendar feed. Saved as a whole through `services.availability_replace`."""

    agent_field = "agent"
    agent_actions = ("view", "change")
    list_display = ("agent", "time_zone", "instant_booking", "buffer_minutes", "min_notice_minutes", "updated_at")
    list_select_related = ("agent",)
    search_fields = ("agent__email", "agent__first_name", "agent__last_name")
    fieldsets = [
        (None, {"fields": ("agent", "time_zone", "instant_booking")}),
        (_("Booking rules"), {"fields": ("slot_minutes", "buffer_minutes", "min_notice_minutes", "horizon_days")}),
        (_("Calendar feed"), {"fields": ("feed_url",),
                              "description": _("Subscribe to this private address from your calendar app. "
                                               "Anyone with it sees your viewings: reset it if it leaks.")}),
    ]
    readonly_fields = ("agent", "feed_url")
    inlines = [AvailabilityRuleInline, AvailabilityExceptionInline]
    actions = ["reset_feed"]

    change_form_template = "bookings/admin_availability_change_form.html"

    def get_urls(self):
        from django.urls import path

        return [path("<path:object_id>/reset-feed/", self.admin_site.admin_view(self.reset_feed_view),
                     name="bookings_agentavailability_reset_feed"),
                *super().get_urls()]

    def reset_feed_view(self, request, object_id):
        """POST: a new private feed address for this availability's agent (the old one stops)."""
        availability = self.get_object(request, object_id)  # scoped: another agent's is None
        if request.method != "POST" or availability is None or not self.has_change_permission(request, availability):
            raise Http404
        self.reset_feed(request, AgentAvailability.objects.filter(pk=availability.pk))
        return redirect(reverse("admin:bookings_agentavailability_change", args=[availability.pk]))

    @admin.display(description=_("private feed address"))
    def feed_url(self, availability):
        if not availability.pk:
            return "—"
        url = settings.SITE_URL.rstrip("/") + reverse("bookings_agent_feed", args=[availability.feed_token])
        return format_html('<a href="{}">{}</a>', url, url)

    # Created with the default week when first needed (services.availability_get), never here;
    # deleting it would only bring the defaults back.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        # An agent has exactly one: create it with the default week if need be and open it.
        if request.method == "GET" and getattr(request.user, "is_agent", False) \
                and not self.sees_everything(request):
            availability = services.availability_get(agent=request.user)
            return redirect(reverse("admin:bookings_agentavailability_change", args=[availability.pk]))
        return super().changelist_view(request, extra_context)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method != "POST":
            return super().changeform_view(request, object_id, form_url, extra_context)
        try:
            with transaction.atomic(using=router.db_for_write(self.model)):
                return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:  # refused by the services: nothing was changed
            self.message_user(request, exc.detail, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        # Written with its rules in save_related, through the services.
        pass

    def save_formset(self, request, form, formset, change):
        # Collected in save_related; save(commit=False) only lists the changes for the history.
        formset.save(commit=False)

    def save_related(self, request, form, formsets, change):
        for formset in formsets:
            self.save_formset(request, form, formset, change)
        obj = form.instance
        rules, exceptions = None, None
        for formset in formsets:
            kept = [f.cleaned_data for f in formset.forms
                    if f.cleaned_data and not f.cleaned_data.get("DELETE")
                    and (f.instance.pk or f.has_changed())]
            if formset.model is AvailabilityRule:
                rules = [{"weekday": row["weekday"], "start": row["start"], "end": row["end"]} for row in kept]
            elif formset.model is AvailabilityException:
                exceptions = [{"date": row["date"], "kind": row["kind"], "start": row.get("start"),
                               "end": row.get("end"), "note": row.get("note", "")} for row in kept]
        services.availability_replace(
            agent=obj.agent, time_zone=form.cleaned_data.get("time_zone", obj.time_zone), rules=rules,
            exceptions=exceptions, **{name: form.cleaned_data[name] for name in POLICY_FIELDS
                                      if name in form.cleaned_data})

    @admin.action(description=_("Reset the private feed address"), permissions=["change"])
    def reset_feed(self, request, queryset):
        for availability in queryset.select_related("agent"):
            try:
                services.availability_feed_token_reset(agent=availability.agent)
            except ApplicationError as exc:
                self.message_user(request, f"{availability}: {exc.detail}", messages.ERROR)
            else:
                self.message_user(request, _("%(a)s: the old feed address no longer works.") % {"a": availability},
                                  messages.SUCCESS)


# --- a listing's own choice of instant booking or review ---------------------------------------

@admin.register(ListingBookingOption)
class ListingBookingOptionAdmin(AgentScopedAdmin):
    """Instant booking or review for one listing, overriding the agent's default. Written
    through `services.listing_booking_mode_set`; deleting it goes back to the default."""

    agent_field = "listing__agent"
    list_display = ("listing", "instant_booking")
    list_select_related = ("listing",)
    fields = ("listing", "instant_booking")

    def get_readonly_fields(self, request, obj=None):
        return ("listing",) if obj is not None else ()

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method != "POST":
            return super().changeform_view(request, object_id, form_url, extra_context)
        try:
            with transaction.atomic(using=router.db_for_write(self.model)):
                return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        services.listing_booking_mode_set(listing=obj.listing, by=request.user, instant_booking=obj.instant_booking)
        saved = ListingBookingOption.objects.get(listing=obj.listing)
        obj.pk = saved.pk
        obj._state.adding = False

    def delete_model(self, request, obj):
        services.listing_booking_mode_set(listing=obj.listing, by=request.user, instant_booking=None)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a bulk queryset delete would bypass the services
        return actions
