"""Admin of notifications and deliveries (staff): filters by channel and status, and retrying
failed deliveries."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from notifications import services
from notifications.models import Delivery, Device, Notification


def _staff(request):
    return getattr(request.user, "sees_everything", False)


class StaffOnlyAdmin(admin.ModelAdmin):
    """People's notifications are for staff (role staff or superuser) only, never agents."""

    def has_module_permission(self, request):
        return _staff(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return _staff(request) and super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return _staff(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return _staff(request) and super().has_delete_permission(request, obj)

    def has_add_permission(self, request):
        return False

    def has_retry_permission(self, request):
        return _staff(request)


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = ("channel", "status", "attempts", "last_error", "provider_message_id", "due_at", "sent_at",
              "delivered_at", "failed_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.action(description=_("Retry the failed deliveries"), permissions=["retry"])
def retry_failed_deliveries(modeladmin, request, queryset):
    if queryset.model is Notification:
        ids = Delivery.objects.filter(notification__in=queryset, status=Delivery.Status.FAILED).values_list(
            "pk", flat=True)
    else:
        ids = queryset.filter(status=Delivery.Status.FAILED).values_list("pk", flat=True)
    count = services.deliveries_retry(delivery_ids=list(ids))
    modeladmin.message_user(request, ngettext("%(n)s delivery queued again.", "%(n)s deliveries queued again.",
                                              count) % {"n": count}, messages.SUCCESS)


@admin.register(Notification)
class NotificationAdmin(StaffOnlyAdmin):
    list_display = ("title", "kind", "user", "created_at", "read_at")
    list_filter = ("kind", "deliveries__channel", "deliveries__status", "created_at")
    search_fields = ("title", "user__email", "source")
    readonly_fields = ("user", "kind", "source", "title", "body", "url", "data", "collapse_key", "created_at",
                       "read_at")
    inlines = [DeliveryInline]
    actions = [retry_failed_deliveries]
    list_select_related = ("user",)
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        # Filtering across deliveries joins them: one row per notification all the same.
        return super().get_queryset(request).distinct()


@admin.register(Delivery)
class DeliveryAdmin(StaffOnlyAdmin):
    list_display = ("notification", "channel", "status", "attempts", "last_error", "due_at", "updated_at")
    list_filter = ("channel", "status")
    search_fields = ("notification__user__email", "provider_message_id", "notification__title")
    readonly_fields = ("notification", "channel", "status", "attempts", "last_error", "provider_message_id",
                       "due_at", "queued_at", "created_at", "updated_at", "sent_at", "delivered_at", "failed_at")
    actions = [retry_failed_deliveries]
    list_select_related = ("notification",)


@admin.register(Device)
class DeviceAdmin(StaffOnlyAdmin):
    list_display = ("user", "platform", "last_seen_at", "deactivated_at")
    list_filter = ("platform", ("deactivated_at", admin.EmptyFieldListFilter))
    search_fields = ("user__email",)
    readonly_fields = ("user", "token", "platform", "created_at", "last_seen_at", "deactivated_at",
                       "deactivation_reason")
