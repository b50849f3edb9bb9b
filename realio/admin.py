"""The admin mixin that scopes agents to their own objects, and the events outbox admin."""

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _

from realio import events
from realio.models import HandlerRun, OutboxEvent

# Models whose admin uses AgentScopedAdmin: the Agents group gets their permissions
# (accounts.services.agents_group_sync, after every migrate).
AGENT_SCOPED_MODELS: dict[type, tuple[str, ...]] = {}


class AgentScopedAdmin(admin.ModelAdmin):
    """One place for "an agent touches only their own": list, object pages, edits, deletes and
    foreign-key choices. Staff (role staff or superuser) see everything; bare is_staff does not.

    `agent_field` is the lookup from the model to the owning user ("agent", "listing__agent";
    "pk" for the user model itself); `agent_actions` are the permissions the Agents group gets
    on the model.
    """

    agent_field = "agent"
    agent_actions = ("view", "add", "change", "delete")

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        AGENT_SCOPED_MODELS[model] = self.agent_actions

    @staticmethod
    def sees_everything(request):
        return getattr(request.user, "sees_everything", False)

    def scope(self, request, queryset):
        if self.sees_everything(request):
            return queryset
        if getattr(request.user, "is_agent", False):
            return queryset.filter(**{self.agent_field: request.user.pk})
        return queryset.none()

    def get_queryset(self, request):
        return self.scope(request, super().get_queryset(request))

    def _owns(self, request, obj):
        if obj is None or self.sees_everything(request):
            return True
        return self.scope(request, self.model._default_manager.filter(pk=obj.pk)).exists()

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) and self._owns(request, obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._owns(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._owns(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # An agent may only point at their own related objects (or themselves).
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and not self.sees_everything(request):
            related_admin = self.admin_site._registry.get(db_field.related_model)
            if isinstance(related_admin, AgentScopedAdmin):
                field.queryset = related_admin.scope(request, field.queryset)
        return field


class HandlerRunInline(admin.TabularInline):
    model = HandlerRun
    extra = 0
    can_delete = False
    fields = ("handler", "status", "attempts", "last_error", "next_attempt_at", "finished_at")
    readonly_fields = fields


class DeliveryStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("pending", _("pending")), ("failed", _("failed")), ("delivered", _("delivered"))]

    def queryset(self, request, queryset):
        if self.value() == "pending":
            return queryset.filter(delivered_at__isnull=True).exclude(runs__status=HandlerRun.Status.FAILED)
        if self.value() == "failed":
            return queryset.filter(runs__status=HandlerRun.Status.FAILED).distinct()
        if self.value() == "delivered":
            return queryset.filter(delivered_at__isnull=False)
        return queryset


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    list_display = ("id", "type", "created_at", "relayed_at", "delivered_at", "failed_runs")
    list_filter = (DeliveryStateFilter, "type")
    search_fields = ("type",)
    date_hierarchy = "created_at"
    readonly_fields = ("type", "payload", "created_at", "relayed_at", "delivered_at")
    inlines = [HandlerRunInline]
    actions = ["retry"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            failed_count=Count("runs", filter=Q(runs__status=HandlerRun.Status.FAILED)))

    @admin.display(description=_("failed handlers"), ordering="failed_count")
    def failed_runs(self, obj):
        return obj.failed_count

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_module_permission(self, request):
        return getattr(request.user, "sees_everything", False)

    def has_view_permission(self, request, obj=None):
        return getattr(request.user, "sees_everything", False)

    def has_delete_permission(self, request, obj=None):
        return getattr(request.user, "sees_everything", False)

    @admin.action(description=_("Retry failed handlers and relay again"), permissions=["view"])
    def retry(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        events.retry_failed(ids)
        self.message_user(request, _("%(n)d events queued again.") % {"n": len(ids)}, messages.SUCCESS)
