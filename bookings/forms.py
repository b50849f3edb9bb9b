"""Forms of the booking pages: a time to book (with a note), a new time, a reason to cancel.

They only read what was sent; every rule (free, on the grid, who may act) is the services'.
"""

import datetime as dt

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class AwareDateTimeField(forms.CharField):
    """An ISO 8601 instant with its UTC offset, as the slot buttons send it."""

    default_error_messages = {"invalid": _("Pick one of the offered times.")}

    def clean(self, value):
        value = super().clean(value)  # the text, its length checked
        if not value:
            return None
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        if timezone.is_naive(parsed):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return parsed


class BookingForm(forms.Form):
    start = AwareDateTimeField(label=_("Time"), max_length=40)
    note = forms.CharField(label=_("Note for the agent (optional)"), max_length=1000, required=False,
                           widget=forms.Textarea(attrs={"rows": 3, "maxlength": 1000}))


class RescheduleForm(forms.Form):
    start = AwareDateTimeField(label=_("New time"), max_length=40)


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason (optional)"), max_length=500, required=False)
