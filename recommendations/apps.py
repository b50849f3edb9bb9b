from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecommendationsConfig(AppConfig):
    """Recommendations: interaction log, models, similar homes."""

    name = "recommendations"
    verbose_name = _("Recommendations")

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from accounts.services import register_eraser, register_exporter
        from recommendations import services

        # A signal, not a call in the login views: allauth's sign-in, sign-up and the admin's
        # login all end here, and merging a visitor's history is not part of any of them.
        user_logged_in.connect(services.on_user_logged_in, dispatch_uid="recommendations-merge-anonymous")
        register_exporter("interactions", services.interactions_export)
        register_eraser(services.interactions_erase)
