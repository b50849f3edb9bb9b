"""Users (email is the login), their role and profile, and agents' professional details."""

import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField


def validate_time_zone(value):
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(value)s is not a known time zone (use an IANA name such as Europe/Paris)."),
                              params={"value": value})


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create(self, email, password, **fields):
        if not email:
            raise ValueError("An email is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **fields):
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email, password=None, **fields):
        fields.update(is_superuser=True, is_staff=True, role=User.Role.STAFF)
        return self._create(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    class Role(models.TextChoices):
        CUSTOMER = "customer", _("Customer")
        AGENT = "agent", _("Agent")
        STAFF = "staff", _("Staff")

    email = models.EmailField(_("email"), max_length=254, unique=True)
    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.CUSTOMER)
    phone = PhoneNumberField(_("phone"), blank=True, help_text=_("International format, e.g. +33612345678."))
    avatar = models.ImageField(_("avatar"), upload_to="avatars/%Y/%m/", blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, default="UTC", validators=[validate_time_zone])
    language = models.CharField(_("language"), max_length=16, choices=settings.LANGUAGES,
                                default=settings.LANGUAGE_CODE)
    # is_staff only opens the admin door (agents have it too); what a user sees there is
    # decided by role: staff (or a superuser) see everything, agents their own objects.
    is_staff = models.BooleanField(_("admin access"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("joined"), default=timezone.now)
    deleted_at = models.DateTimeField(_("deleted"), null=True, blank=True, editable=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
            models.CheckConstraint(condition=models.Q(role__in=["customer", "agent", "staff"]),
                                   name="accounts_user_role_valid"),
        ]

    def __str__(self):
        return self.name

    @property
    def name(self):
        """How others see this person; a deleted account shows as "deleted user"."""
        if self.deleted_at:
            return str(_("deleted user"))
        full = f"{self.first_name} {self.last_name}".strip()
        return full or self.email.split("@")[0]

    def get_full_name(self):
        return self.name

    def get_short_name(self):
        return self.first_name or self.name

    @property
    def is_agent(self):
        return self.role == self.Role.AGENT

    @property
    def is_customer(self):
        return self.role == self.Role.CUSTOMER

    @property
    def sees_everything(self):
        """Role staff or a superuser: never merely is_staff (agents have that too)."""
        return self.is_active and (self.is_superuser or self.role == self.Role.STAFF)

    def has_perm(self, perm, obj=None):
        # Staff operate the platform: every permission, like a superuser, but by role.
        if self.is_active and self.role == self.Role.STAFF:
            return True
        return super().has_perm(perm, obj)

    def has_module_perms(self, app_label):
        if self.is_active and self.role == self.Role.STAFF:
            return True
        return super().has_module_perms(app_label)


class AgentProfile(models.Model):
    """An agent's professional details and verification."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="agent_profile",
                                verbose_name=_("agent"))
    agency = models.CharField(_("agency"), max_length=200, blank=True)
    licence_number = models.CharField(_("licence number"), max_length=64, blank=True)
    bio = models.TextField(_("bio"), blank=True, max_length=4000)
    languages = models.CharField(_("languages spoken"), max_length=200, blank=True)
    service_areas = models.TextField(_("service areas"), blank=True, max_length=2000)
    verified_at = models.DateTimeField(_("verified"), null=True, blank=True)
    # Keep the verification when the verifying staff member's account goes.
    verified_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="+", verbose_name=_("verified by"))

    class Meta:
        verbose_name = _("agent profile")
        verbose_name_plural = _("agent profiles")

    def __str__(self):
        return str(self.user)
