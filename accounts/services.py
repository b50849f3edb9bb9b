"""Writes on accounts: sign-up, profile changes, agent verification, export and deletion."""

import uuid

from allauth.account.models import EmailAddress
from django.contrib.auth import password_validation
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AgentProfile, User
from realio import events
from realio.errors import ApplicationError, Conflict

AGENTS_GROUP = "Agents"
PROFILE_FIELDS = ("first_name", "last_name", "phone", "time_zone", "language", "avatar")
AGENT_FIELDS = ("agency", "licence_number", "bio", "languages", "service_areas")
SIGNUP_ROLES = (User.Role.CUSTOMER, User.Role.AGENT)


def user_create(*, email, password, role=User.Role.CUSTOMER, first_name="", last_name="",
                record_email=True, **extra):
    """Create a customer or agent account; raises ApplicationError (400) or Conflict (409).

    `record_email=False` leaves the allauth EmailAddress to allauth's own sign-up flow, which
    records it (and sends the confirmation) itself.
    """
    if role not in SIGNUP_ROLES:
        raise ApplicationError(_("role: choose customer or agent."), errors={"role": [_("Choose customer or agent.")]})
    email = User.objects.normalize_email(email or "").strip().lower()
    user = User(email=email, role=role, first_name=first_name, last_name=last_name, **extra)
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ApplicationError(f"password: {exc.messages[0]}", errors={"password": exc.messages}) from exc
    user.set_password(password)
    if User.objects.filter(email__iexact=email).exists():
        raise _duplicate_email()
    try:
        user.full_clean(exclude=["password"], validate_unique=False)
    except ValidationError as exc:
        raise ApplicationError.from_validation_error(exc) from exc
    try:
        with transaction.atomic():
            if role == User.Role.AGENT:
                user.is_staff = True  # the admin door; what they see is scoped to their own objects
            user.save()
            if role == User.Role.AGENT:
                AgentProfile.objects.create(user=user)
                user.groups.add(agents_group())
            if record_email:
                EmailAddress.objects.create(user=user, email=email, primary=True, verified=False)
            events.publish("account.created", user_id=user.pk, role=role)
    except IntegrityError as exc:  # a concurrent sign-up with the same email
        raise _duplicate_email() from exc
    return user


def _duplicate_email():
    message = _("An account with this email already exists.")
    return ApplicationError(f"email: {message}", errors={"email": [message]})


def agents_group():
    group, _created = Group.objects.get_or_create(name=AGENTS_GROUP)
    return group


def user_update(*, user, **fields):
    """Change profile fields (and an agent's professional details)."""
    unknown = set(fields) - set(PROFILE_FIELDS) - set(AGENT_FIELDS)
    if unknown:
        raise ApplicationError(_("These fields cannot be changed: %(f)s") % {"f": ", ".join(sorted(unknown))})
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        old_avatar = user.avatar.name if "avatar" in fields and user.avatar else None
        for name in PROFILE_FIELDS:
            if name in fields:
                setattr(user, name, fields[name])
        try:
            user.full_clean(exclude=["password"])
        except ValidationError as exc:
            raise ApplicationError.from_validation_error(exc) from exc
        user.save()
        agent_fields = {k: v for k, v in fields.items() if k in AGENT_FIELDS}
        if agent_fields:
            if not user.is_agent:
                raise ApplicationError(_("Only agents have professional details."))
            profile, _created = AgentProfile.objects.get_or_create(user=user)
            for name, value in agent_fields.items():
                setattr(profile, name, value)
            try:
                profile.full_clean()
            except ValidationError as exc:
                raise ApplicationError.from_validation_error(exc) from exc
            profile.save()
        if old_avatar and old_avatar != user.avatar.name:
            storage = user.avatar.storage
            transaction.on_commit(lambda: storage.delete(old_avatar))
    return user


def agent_verify(*, agent, by):
    """Staff verify an agent, who may then publish where AGENT_VERIFICATION_REQUIRED is on."""
    if not by.sees_everything:
        raise ApplicationError(_("Only staff verify agents."))
    if not agent.is_agent:
        raise Conflict(_("Only agents are verified."))
    with transaction.atomic():
        profile, _created = AgentProfile.objects.select_for_update().get_or_create(user=agent)
        if profile.verified_at is None:
            profile.verified_at = timezone.now()
            profile.verified_by = by
            profile.save(update_fields=["verified_at", "verified_by"])
    return profile


# --- Export and deletion ---------------------------------------------------------------------
# Other apps add their part of a person's data through these registries (in AppConfig.ready),
# so export and deletion cover every app without accounts knowing them.
EXPORTERS: dict[str, object] = {}
ERASERS: list = []


def register_exporter(name, func):
    """`func(user) -> JSON-able` becomes the `name` section of the export."""
    EXPORTERS[name] = func


def register_eraser(func):
    """`func(user)` erases or detaches the app's personal data, inside the deletion transaction."""
    if func not in ERASERS:
        ERASERS.append(func)


def user_delete(*, user):
    """Delete an account: erase personal data, keep shared records with a "deleted user".

    The row stays (anonymised, inactive, unusable password) so that a counterpart's
    conversations and bookings keep their other party; everything personal is wiped, sessions
    and refresh tokens are revoked, and `account.deleted` is published.
    """
    from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.deleted_at:
            return user
        for eraser in ERASERS:
            eraser(user)
        if user.avatar:
            user.avatar.delete(save=False)
        EmailAddress.objects.filter(user=user).delete()
        AgentProfile.objects.filter(user=user).delete()
        user.email = f"deleted-{user.pk}-{uuid.uuid4().hex[:8]}@deleted.invalid"
        user.first_name = user.last_name = ""
        user.phone = ""
        user.avatar = ""
        user.is_active = False
        user.is_staff = False
        user.deleted_at = timezone.now()
        user.set_unusable_password()
        user.save()
        user.groups.clear()
        user.user_permissions.clear()
        for token in OutstandingToken.objects.filter(user=user):
            BlacklistedToken.objects.get_or_create(token=token)
        _delete_sessions_of(user)
        events.publish("account.deleted", user_id=user.pk)
    return user


def _delete_sessions_of(user):
    # Sessions are not indexed by user; the table is scanned in chunks of live sessions only.
    live = Session.objects.filter(expire_date__gt=timezone.now())
    doomed = [s.session_key for s in live.iterator(chunk_size=1000)
              if s.get_decoded().get("_auth_user_id") == str(user.pk)]
    if doomed:
        Session.objects.filter(session_key__in=doomed).delete()
        from django.core.cache import cache

        cache.delete_many([f"django.contrib.sessions.cached_db{key}" for key in doomed])


def agents_group_sync(**kwargs):
    """Give the Agents group the admin permissions of every agent-scoped admin (post_migrate)."""
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    from realio.admin import AGENT_SCOPED_MODELS

    group = agents_group()
    wanted = []
    for model, actions in AGENT_SCOPED_MODELS.items():
        content_type = ContentType.objects.get_for_model(model)
        codenames = [f"{action}_{model._meta.model_name}" for action in actions]
        wanted += list(Permission.objects.filter(content_type=content_type, codename__in=codenames))
    group.permissions.set(wanted)
