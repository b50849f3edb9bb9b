from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    """Accounts: users, roles, profiles, preferences, authentication (web and JWT)."""

    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self):
        from accounts import services

        # After every migrate (the test database too), so new agent-scoped admins take effect.
        post_migrate.connect(services.agents_group_sync, dispatch_uid="accounts.agents_group_sync")
