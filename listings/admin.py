"""Listings in the admin, where agents manage their own homes and staff see everyone's.

Every write goes through `listings.services` (rules, price history, events): the listing
while its form is validated, photos through the services or the one image check, statuses
through the workflow. The map is django-leaflet's widget, served from the site's static files.
"""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, router, transaction
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from leaflet.admin import LeafletGeoAdminMixin

from accounts.models import User
from listings import services
from listings.models import Feature, Listing, ListingPhoto, PriceChange
from realio.admin import AgentScopedAdmin
from realio.errors import ApplicationError, conflict_from_integrity_error
from realio.images import image_check

Status = Listing.Status
CLOSING_STATUSES = (Status.SOLD, Status.RENTED)
# The services name a point's parts; the form has one map field for both.
SERVICE_FIELD_ALIASES = {"latitude": "location", "longitude": "location"}


class ListingForm(forms.ModelForm):
    """The listing form. Fields are checked here, then the listing is written through the
    services while the form is validated, so whatever the services refuse (an illegal status
    change, an unverified agent publishing, a point off the globe) comes back as a form error
    next to what was typed. ListingAdmin rolls that write back unless the whole submission
    (inlines included) is saved, and adopts the written listing in save_model.
    """

    features = forms.MultipleChoiceField(label=_("features"), choices=Feature.choices, required=False,
                                         widget=forms.CheckboxSelectMultiple)
    acting_user = None  # who submits: set by ListingAdmin.get_form
    saved_listing = None

    class Meta:
        model = Listing
        # What an agent edits (ListingAdmin.get_fieldsets narrows it per person and page).
        fields = ("agent", *services.EDITABLE_FIELDS, "status", "location", "close_price")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "time_zone" in self.fields:
            self.fields["time_zone"].required = False
            self.fields["time_zone"].help_text = _("Leave empty to take the time zone of the point on the map.")
        if "close_price" in self.fields:
            self.fields["close_price"].help_text = _("When you mark the listing sold or rented; the asking price "
                                                     "if empty.")

    def clean(self):
        cleaned = super().clean()
        status = cleaned.get("status")
        if "close_price" in self.changed_data and cleaned.get("close_price") is not None and not (
                "status" in self.changed_data and status in CLOSING_STATUSES):
            self.add_error("close_price", _("A close price is recorded when the listing is marked sold or rented."))
        return cleaned

    def _post_clean(self):
        # Replaces ModelForm's model validation: the services normalise (rent period, country,
        # time zone) before they validate, which the raw instance would fail.
        if self._errors:
            return
        try:
            self.saved_listing = self._write()
        except ApplicationError as exc:
            self._add_service_errors(exc)
        except IntegrityError as exc:  # the services' savepoint is rolled back
            self._add_service_errors(conflict_from_integrity_error(exc))

    def _write(self):
        data, user = self.cleaned_data, self.acting_user
        if self.instance.pk is None:
            fields = {name: data[name] for name in services.EDITABLE_FIELDS if name in data}
            if not fields.get("time_zone"):
                fields.pop("time_zone", None)
            agent = data.get("agent", user)  # only staff have the field: an agent adds their own
            point = data["location"]
            return services.listing_create(agent=agent, latitude=point.y, longitude=point.x,
                                           status=data.get("status") or Status.DRAFT, **fields)
        changed = set(self.changed_data)
        fields = {name: data[name] for name in services.EDITABLE_FIELDS if name in changed}
        if "time_zone" in fields and not fields["time_zone"]:
            del fields["time_zone"]  # recomputed by the services when the point moves
        if "location" in changed:
            fields.update(latitude=data["location"].y, longitude=data["location"].x)
        if "status" in changed:
            fields.update(status=data["status"], close_price=data.get("close_price"))
        if not fields:
            return self.instance
        return services.listing_update(listing=self.instance, by=user, **fields)

    def _add_service_errors(self, exc):
        """The services' errors on the fields they name; the rest (or the detail) above the form."""
        elsewhere = []
        for field, field_messages in (exc.errors or {}).items():
            name = SERVICE_FIELD_ALIASES.get(field, field)
            if name in self.fields and name not in self._errors:
                self.add_error(name, list(field_messages))
            elif field in ("__all__", "non_field_errors"):
                elsewhere += list(field_messages)
            else:
                elsewhere += [f"{field}: {message}" for message in field_messages]
        if elsewhere or not exc.errors:
            self.add_error(None, elsewhere or exc.detail)

    def adopt_saved_listing(self, obj):
        """Make `obj` (the admin's object, shared with the inline formsets) the written listing."""
        saved = self.saved_listing
        for field in Listing._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
        obj._state.adding = False
        obj._state.db = saved._state.db


# --- inlines ----------------------------------------------------------------------------------

class ListingChildInline:
    """An inline whose rows belong to a listing: who may see or change the listing may see or
    change them (ListingAdmin does the scoping; the Agents group has no permission on them)."""

    def _listing_admin(self):
        return self.admin_site._registry[Listing]

    def has_view_permission(self, request, obj=None):
        return self._listing_admin().has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        if obj is None:
            return self._listing_admin().has_add_permission(request)
        return self._listing_admin().has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self.has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return obj is not None and self._listing_admin().has_change_permission(request, obj)


class ListingPhotoForm(forms.ModelForm):
    class Meta:
        model = ListingPhoto
        fields = ("image", "caption", "position")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # Renditions belong to the image: to replace one, delete the photo and add another.
            self.fields["image"].disabled = True
        else:
            self.fields["position"].required = False
            self.fields["position"].initial = None
            self.fields["position"].help_text = _("Empty: after the others.")

    def clean_image(self):
        upload = self.cleaned_data.get("image")
        if not isinstance(upload, UploadedFile):
            return upload
        upload.seek(0)
        try:
            # Checked here to show the error on the field; services.photo_add checks it again
            # and stores it re-encoded without metadata (EXIF, GPS), as every upload.
            image_check(upload)
        except ApplicationError as exc:
            raise ValidationError(exc.detail) from exc
        upload.seek(0)
        return upload


class ListingPhotoFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        kept = sum(1 for form in self.forms
                   if not (self.can_delete and self._should_delete_form(form))
                   and (form.instance.pk or form.has_changed()))
        if kept > services.MAX_PHOTOS:
            raise ValidationError(_("A listing has at most %(n)d photos.") % {"n": services.MAX_PHOTOS})


class ListingPhotoInline(ListingChildInline, admin.TabularInline):
    model = ListingPhoto
    form = ListingPhotoForm
    formset = ListingPhotoFormSet
    fields = ("preview", "image", "caption", "position")
    readonly_fields = ("preview",)
    extra = 1
    max_num = services.MAX_PHOTOS

    @admin.display(description=_("preview"))
    def preview(self, photo):
        if not photo.pk or not photo.image:
            return "—"
        return format_html('<a href="{}"><img src="{}" alt="{}" width="160"></a>',
                           photo.large_url, photo.thumbnail_url, photo.caption)


class PriceHistoryInline(ListingChildInline, admin.TabularInline):
    """The prices a listing has had, written by the services whenever the price changes."""

    model = PriceChange
    fields = ("price", "changed_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- listings ---------------------------------------------------------------------------------

@admin.register(Listing)
class ListingAdmin(LeafletGeoAdminMixin, AgentScopedAdmin):
    agent_field = "agent"
    form = ListingForm
    list_display = ("title", "price", "status", "listing_type", "city", "agent", "published_at", "view_count")
    list_filter = ("status", "listing_type", "property_type", "city")
    search_fields = ("title", "city", "street", "postal_code")
    list_select_related = ("agent",)
    actions = ["publish", "withdraw", "mark_closed"]
    workflow_fields = ("currency", "published_at", "close_price", "closed_at", "view_count", "external_key",
                       "created_at", "updated_at")
    readonly_fields = ("currency", "published_at", "closed_at", "view_count", "external_key", "created_at",
                       "updated_at")

    @property
    def settings_overrides(self):
        # Tiles are map data the browser fetches from MAP_TILE_URL (allowed by the CSP's
        # img-src); Leaflet itself and the widget's scripts are the site's own static files.
        attrs = {"attribution": getattr(settings, "MAP_TILE_ATTRIBUTION", ""), "maxZoom": 19,
                 "referrerPolicy": "strict-origin"}
        url = getattr(settings, "MAP_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
        return {"TILES": [(str(_("Map")), url, attrs)]}

    # --- the form

    def get_fieldsets(self, request, obj=None):
        main = ["title", "description", "listing_type", "rent_period", "property_type", "status", "price"]
        if obj is not None or self.sees_everything(request):
            main.insert(0, "agent")
        fieldsets = [
            (None, {"fields": main}),
            (_("The home"), {"fields": ["bedrooms", "bathrooms", "area_sqm", "year_built", "features"]}),
            (_("Address and map"), {"fields": ["street", "city", "region", "postal_code", "country", "location",
                                               "time_zone"]}),
        ]
        if obj is not None:
            fieldsets.append((_("Workflow"), {"fields": list(self.workflow_fields)}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        # The agent is chosen once, by staff, when the listing is added (agents add their own):
        # the services have no reassignment.
        return self.readonly_fields + (("agent",) if obj is not None else ())

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"acting_user": request.user})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "agent":
            kwargs["queryset"] = User.objects.filter(role=User.Role.AGENT, is_active=True, deleted_at__isnull=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_inlines(self, request, obj):
        return [ListingPhotoInline, PriceHistoryInline] if obj is not None else [ListingPhotoInline]

    def view_on_site(self, obj):
        return reverse("listing_page", args=[obj.pk])

    # --- saving: through the services

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method != "POST":
            return super().changeform_view(request, object_id, form_url, extra_context)
        request.listing_saved = False
        try:
            with transaction.atomic(using=router.db_for_write(self.model)):
                response = super().changeform_view(request, object_id, form_url, extra_context)
                if not request.listing_saved:
                    # The form or an inline was sent back: the listing written while the form
                    # was validated, and its events, must not outlive the refused submission.
                    transaction.set_rollback(True)
        except ApplicationError as exc:  # refused while saving the inlines: nothing was changed
            self.message_user(request, exc.detail, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        return response

    def save_model(self, request, obj, form, change):
        # The services wrote the listing in ListingForm._post_clean; the admin's object (which
        # the inline formsets hold) becomes that listing.
        form.adopt_saved_listing(obj)
        request.listing_saved = True

    def save_formset(self, request, form, formset, change):
        if formset.model is not ListingPhoto:
            # The price history: read-only, so this saves nothing (the change message needs it).
            return super().save_formset(request, form, formset, change)
        listing = form.instance
        formset.save(commit=False)
        for photo in formset.deleted_objects:
            services.photo_delete(photo_id=photo.pk, listing_id=listing.pk, by=request.user)
        for photo, changed in formset.changed_objects:
            services.photo_update(photo_id=photo.pk, listing_id=listing.pk, by=request.user,
                                  caption=photo.caption if "caption" in changed else None,
                                  position=photo.position if "position" in changed else None)
        for photo in formset.new_objects:
            upload = photo.image.file
            upload.seek(0)
            added = services.photo_add(listing=listing, by=request.user, upload=upload, caption=photo.caption)
            if photo.position is not None:
                services.photo_update(photo_id=added.pk, listing_id=listing.pk, by=request.user,
                                      position=photo.position)

    def delete_model(self, request, obj):
        services.listing_delete(listing=obj, by=request.user)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ApplicationError as exc:  # e.g. records that must be kept: rolled back
            self.message_user(request, exc.detail, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:listings_listing_change", args=[object_id]))

    # --- bulk status changes, through the workflow, one listing at a time

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # a bulk queryset delete would bypass the services
        return actions

    def _move(self, request, queryset, status_of, done_message):
        done = 0
        for listing in queryset.order_by("pk"):
            try:
                services.listing_set_status(listing=listing, by=request.user, status=status_of(listing))
            except ApplicationError as exc:
                self.message_user(request, f"{listing}: {exc.detail}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, done_message(done), messages.SUCCESS)

    @admin.action(description=_("Publish the selected listings"), permissions=["change"])
    def publish(self, request, queryset):
        self._move(request, queryset, lambda listing: Status.ACTIVE, lambda n: ngettext(
            "%(n)d listing is now active.", "%(n)d listings are now active.", n) % {"n": n})

    @admin.action(description=_("Withdraw the selected listings"), permissions=["change"])
    def withdraw(self, request, queryset):
        self._move(request, queryset, lambda listing: Status.WITHDRAWN, lambda n: ngettext(
            "%(n)d listing is now withdrawn.", "%(n)d listings are now withdrawn.", n) % {"n": n})

    @admin.action(description=_("Mark the selected listings sold (rentals: rented)"), permissions=["change"])
    def mark_closed(self, request, queryset):
        def closing_status(listing):
            return Status.RENTED if listing.listing_type == Listing.ListingType.RENT else Status.SOLD

        self._move(request, queryset, closing_status, lambda n: ngettext(
            "%(n)d listing is now sold or rented.", "%(n)d listings are now sold or rented.", n) % {"n": n})
