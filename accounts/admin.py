"""Users in the admin: staff see and edit everyone; an agent sees and edits only themselves."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from accounts import services
from accounts.models import AgentProfile, User
from realio.admin import AgentScopedAdmin
from realio.errors import ApplicationError


class AgentProfileInline(admin.StackedInline):
    model = AgentProfile
    can_delete = False
    fk_name = "user"
    fields = ("agency", "licence_number", "bio", "languages", "service_areas", "verified_at", "verified_by")
    readonly_fields = ("verified_at", "verified_by")

    def has_add_permission(self, request, obj=None):
        return request.user.sees_everything

    def has_change_permission(self, request, obj=None):
        return True if obj is None else (request.user.sees_everything or obj.pk == request.user.pk)


@admin.register(User)
class UserAdmin(AgentScopedAdmin, DjangoUserAdmin):
    agent_field = "pk"
    agent_actions = ("view", "change")
    ordering = ("-date_joined",)
    list_display = ("email", "name", "role", "is_active", "verified", "date_joined")
    list_filter = ("role", "is_active", "is_superuser")
    search_fields = ("email", "first_name", "last_name")
    readonly_fields = ("date_joined", "last_login", "deleted_at")
    actions = ["verify_agents"]
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "role", "password1", "password2")}),)
    profile_fields = ("email", "first_name", "last_name", "phone", "avatar", "time_zone", "language")

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return self.add_fieldsets
        if not request.user.sees_everything:
            return ((None, {"fields": self.profile_fields}),)
        return (
            (None, {"fields": self.profile_fields + ("password",)}),
            (_("Role and access"), {"fields": ("role", "is_active", "is_staff", "is_superuser", "groups")}),
            (_("Dates"), {"fields": ("date_joined", "last_login", "deleted_at")}),
        )

    def get_readonly_fields(self, request, obj=None):
        if request.user.sees_everything:
            return self.readonly_fields
        return self.readonly_fields + ("email",)

    def get_inlines(self, request, obj):
        return [AgentProfileInline] if obj is not None and obj.is_agent else []

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not request.user.sees_everything:
            actions.pop("verify_agents", None)
        return actions

    @admin.display(boolean=True, description=_("verified agent"))
    def verified(self, obj):
        if not obj.is_agent:
            return None
        profile = getattr(obj, "agent_profile", None)
        return bool(profile and profile.verified_at)

    @admin.action(description=_("Verify the selected agents"))
    def verify_agents(self, request, queryset):
        done = 0
        for agent in queryset.filter(role=User.Role.AGENT):
            try:
                services.agent_verify(agent=agent, by=request.user)
                done += 1
            except ApplicationError as exc:
                self.message_user(request, f"{agent}: {exc.detail}", messages.ERROR)
        self.message_user(request, _("%(n)d agents verified.") % {"n": done}, messages.SUCCESS)
