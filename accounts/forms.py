"""Forms of the account pages: allauth's sign-up extras, the profile, account deletion.

Checks beyond the shape of the input (a valid phone number, a real image) are the services'.
"""

import zoneinfo

from allauth.core import ratelimit
from django import forms
from django.conf import settings
from django.utils.translation import gettext as gettext_now
from django.utils.translation import gettext_lazy as _

from accounts import services
from realio.images import image_check

IMAGE_TYPES = "image/jpeg,image/png,image/webp"


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


def time_zone_choices():
    return [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())]


class ProfileForm(forms.Form):
    """A person's details; agents also edit their professional details. Checks beyond the
    shape of the input (a valid phone number, a real image) are the services' to make."""

    first_name = forms.CharField(label=_("First name"), max_length=150, required=False,
                                 widget=forms.TextInput(attrs={"autocomplete": "given-name"}))
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False,
                                widget=forms.TextInput(attrs={"autocomplete": "family-name"}))
    phone = forms.CharField(label=_("Phone"), max_length=40, required=False,
                            help_text=_("International format, e.g. +33612345678."),
                            widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}))
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=time_zone_choices,
                                  help_text=_("Times of viewings and messages are shown in it."))
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)
    avatar = forms.FileField(label=_("New photo"), required=False,
                             help_text=_("A JPEG, PNG or WebP image."),
                             widget=forms.FileInput(attrs={"accept": IMAGE_TYPES}))
    remove_avatar = forms.BooleanField(label=_("Remove my photo"), required=False)
    agency = forms.CharField(label=_("Agency"), max_length=200, required=False,
                             widget=forms.TextInput(attrs={"autocomplete": "organization"}))
    licence_number = forms.CharField(label=_("Licence number"), max_length=64, required=False)
    bio = forms.CharField(label=_("About me"), max_length=4000, required=False,
                          widget=forms.Textarea(attrs={"rows": 5}))
    languages = forms.CharField(label=_("Languages spoken"), max_length=200, required=False,
                                help_text=_("For example: English, French."))
    service_areas = forms.CharField(label=_("Service areas"), max_length=2000, required=False,
                                    help_text=_("The towns and neighbourhoods you work in."),
                                    widget=forms.Textarea(attrs={"rows": 3}))

    PERSONAL = ("first_name", "last_name", "phone")
    PREFERENCES = ("time_zone", "language")
    PHOTO = ("avatar", "remove_avatar")

    def __init__(self, *args, user, **kwargs):
        self.user = user
        profile = getattr(user, "agent_profile", None) if user.is_agent else None
        initial = {
            "first_name": user.first_name,
            "last_name": user.last_name,
            "phone": str(user.phone or ""),
            "time_zone": user.time_zone,
            "language": user.language,
        }
        if profile is not None:
            initial.update({name: getattr(profile, name) for name in services.AGENT_FIELDS})
        super().__init__(*args, initial=initial, **kwargs)
        if not user.is_agent:
            for name in services.AGENT_FIELDS:
                del self.fields[name]
        if not user.avatar:
            del self.fields["remove_avatar"]

    def section(self, names):
        return [self[name] for name in names if name in self.fields]

    def personal_fields(self):
        return self.section(self.PERSONAL)

    def preference_fields(self):
        return self.section(self.PREFERENCES)

    def photo_fields(self):
        return self.section(self.PHOTO)

    def agent_fields(self):
        return self.section(services.AGENT_FIELDS)

    def changes(self):
        """The keyword arguments for services.user_update, the avatar checked by content."""
        data = self.cleaned_data
        fields = {name: data[name] for name in (*self.PERSONAL, *self.PREFERENCES)}
        fields.update({name: data[name] for name in services.AGENT_FIELDS if name in self.fields})
        if data.get("avatar"):
            fields["avatar"] = image_check(data["avatar"]).file
        elif data.get("remove_avatar"):
            fields["avatar"] = ""
        return fields


class DeleteAccountForm(forms.Form):
    password = forms.CharField(label=_("Your password"), strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))

    def __init__(self, *args, request, **kwargs):
        self.request = request
        super().__init__(*args, **kwargs)

    def clean_password(self):
        # Re-entering the password is limited like allauth's re-authentication (per user).
        user, password = self.request.user, self.cleaned_data["password"]
        if not ratelimit.consume(self.request, action="reauthenticate", user=user):
            raise forms.ValidationError(gettext_now("Too many wrong passwords. Try again later."))
        if not user.check_password(password):
            raise forms.ValidationError(gettext_now("The password is not correct."))
        return password
