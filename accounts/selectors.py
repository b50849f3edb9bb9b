"""Reads on accounts: the export of a person's data, agent publishing rights."""

from django.conf import settings

from accounts import services
from accounts.models import User


def user_export(*, user):
    """Everything Realio holds about `user`, as JSON-able data (DESIGN.md `me/export/`)."""
    data = {
        "account": {
            "id": user.pk,
            "email": user.email,
            "role": user.role,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "phone": str(user.phone or ""),
            "time_zone": user.time_zone,
            "language": user.language,
            "avatar": user.avatar.url if user.avatar else None,
            "date_joined": user.date_joined.isoformat(),
            "last_login": user.last_login.isoformat() if user.last_login else None,
        },
        "email_addresses": [
            {"email": e.email, "verified": e.verified, "primary": e.primary}
            for e in user.emailaddress_set.all()
        ],
    }
    profile = getattr(user, "agent_profile", None) if user.is_agent else None
    if profile is not None:
        data["agent_profile"] = {
            "agency": profile.agency,
            "licence_number": profile.licence_number,
            "bio": profile.bio,
            "languages": profile.languages,
            "service_areas": profile.service_areas,
            "verified_at": profile.verified_at.isoformat() if profile.verified_at else None,
        }
    for name, exporter in services.EXPORTERS.items():
        data[name] = exporter(user)
    return data


def agent_can_publish(agent: User) -> bool:
    """Agents publish at once, unless AGENT_VERIFICATION_REQUIRED makes them wait for staff."""
    if not agent.is_active or not agent.is_agent:
        return False
    if not settings.AGENT_VERIFICATION_REQUIRED:
        return True
    profile = getattr(agent, "agent_profile", None)
    return bool(profile and profile.verified_at)


def email_verified_enough(user: User) -> bool:
    """False only where ACCOUNT_EMAIL_VERIFICATION is "mandatory" and no address is verified."""
    from allauth.account.models import EmailAddress

    if settings.ACCOUNT_EMAIL_VERIFICATION != "mandatory":
        return True
    return EmailAddress.objects.filter(user=user, verified=True).exists()
