from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecommendationsConfig(AppConfig):
    """Recommendations: interaction log, models, similar homes."""

    name = "recommendations"
    verbose_name = _("Recommendations")
