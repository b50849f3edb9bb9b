"""allauth hooks: sign-up through accounts.services, so web and API create accounts alike."""

from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    def save_user(self, request, user, form, commit=True):
        from accounts import services

        data = form.cleaned_data
        return services.user_create(
            email=data["email"],
            password=data["password1"],
            role=data.get("role") or "customer",
            first_name=data.get("first_name", ""),
            last_name=data.get("last_name", ""),
            record_email=False,
        )
