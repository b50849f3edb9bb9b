"""Forms of the account pages."""

from django import forms
from django.utils.translation import gettext_lazy as _


class SignupForm(forms.Form):
    """Extra fields on allauth's sign-up form (allauth adds email and passwords)."""

    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    role = forms.ChoiceField(
        label=_("I am"),
        choices=[("customer", _("looking for a home")), ("agent", _("an agent"))],
        initial="customer",
        widget=forms.RadioSelect,
    )

    def signup(self, request, user):
        """Required by allauth; the account is created by AccountAdapter.save_user."""
