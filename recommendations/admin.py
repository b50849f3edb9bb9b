"""Staff's view of the models: versions with their metrics and status, and the interaction log.
Read-only: models are trained and promoted by `train_recommendations` / `train_valuation`."""

from django.contrib import admin

from recommendations.models import Interaction, ModelVersion


class StaffReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_module_permission(self, request):
        return getattr(request.user, "sees_everything", False)

    def has_view_permission(self, request, obj=None):
        return getattr(request.user, "sees_everything", False)


@admin.register(ModelVersion)
class ModelVersionAdmin(StaffReadOnlyAdmin):
    list_display = ("version", "kind", "status", "promoted", "train_seconds", "created_at", "promoted_at")
    list_filter = ("kind", "status", "promoted")
    readonly_fields = ("kind", "version", "status", "promoted", "metrics", "params", "error", "train_seconds",
                       "created_at", "promoted_at")


@admin.register(Interaction)
class InteractionAdmin(StaffReadOnlyAdmin):
    list_display = ("id", "user", "session", "listing", "kind", "weight", "created_at")
    list_filter = ("kind",)
    raw_id_fields = ("user", "listing")
    date_hierarchy = "created_at"
    show_full_result_count = False
