"""Account pages beside allauth's: the profile, data download and account deletion."""

urlpatterns = []
