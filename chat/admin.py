"""Conversations in the admin, read-only: staff review any conversation, agents their own."""

from django.contrib import admin

from chat.models import Conversation, Message
from realio.admin import AgentScopedAdmin


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    can_delete = False
    fields = ("created_at", "sender", "body", "attachment_type", "edited_at", "deleted_at")
    readonly_fields = fields
    ordering = ("id",)
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("sender")

    # Shown only inside a conversation the person may view (ConversationAdmin scopes them).
    def has_view_permission(self, request, obj=None):
        return True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(AgentScopedAdmin):
    agent_field = "agent"
    agent_actions = ("view",)
    list_display = ("id", "listing", "customer", "agent", "created_at", "last_message_at")
    list_select_related = ("listing", "customer", "agent")
    search_fields = ("listing__title", "customer__email", "agent__email")
    date_hierarchy = "created_at"
    readonly_fields = ("listing", "customer", "agent", "created_at", "last_message_at")
    fields = readonly_fields
    inlines = [MessageInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

