"""Email channel through Django's email framework (SMTP in production, a file or the console
locally): HTML and text per kind, one-click unsubscribe headers (RFC 8058), a digest of
several notifications in one email."""

import logging
import smtplib
from email.utils import make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.exceptions import TemplateDoesNotExist
from django.template.loader import render_to_string, select_template
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from notifications import kinds
from notifications.backends import ChannelBackend, PermanentError, Sent, Skip, TransientError
from notifications.models import Channel
from notifications.text import render_plain

logger = logging.getLogger(__name__)

class EmailBackend(ChannelBackend):
    channel = Channel.EMAIL

    def send(self, user, notifications):
        from notifications import services

        if not user.email or not user.is_active:
            raise Skip(_("no email address"))
        with translation.override(user.language or settings.LANGUAGE_CODE):
            message = self.build(user, notifications, unsubscribe_url=services.unsubscribe_url(user, notifications))
        try:
            sent = message.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentError(f"recipient refused: {exc.recipients}") from exc
        except smtplib.SMTPResponseException as exc:
            # 5xx is a refusal for good (bad address, policy); 4xx is "try again later".
            error = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
            text = f"SMTP {exc.smtp_code}: {error}"
            if 500 <= exc.smtp_code < 600:
                raise PermanentError(text) from exc
            raise TransientError(text) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientError(f"{exc.__class__.__name__}: {exc}") from exc
        if not sent:
            raise TransientError("the email backend sent nothing")
        return Sent(message_id=message.extra_headers["Message-ID"])

    def build(self, user, notifications, *, unsubscribe_url):
        site = settings.SITE_URL.rstrip("/")
        context = {
            "user": user,
            "site_name": settings.SITE_NAME,
            "site_url": site,
            "preferences_url": f"{site}/notifications/preferences/",
            "unsubscribe_url": unsubscribe_url,
            "items": [{"notification": n, "data": n.data, "url": absolute(n.url)} for n in notifications],
        }
        if len(notifications) == 1 and not kinds.get(notifications[0].kind).digest:
            notification = notifications[0]
            kind = kinds.get(notification.kind)
            context.update(notification=notification, data=notification.data, url=absolute(notification.url))
            subject = notification.title
            text = render_plain([kind.template("email.txt"), "notifications/email/default.txt"], context)
            html = render_to_string([kind.template("email.html"), "notifications/email/default.html"], context)
            attachments = kind.attachments(notification) if kind.attachments else []
        else:
            subject = ngettext("Your %(site)s digest: %(count)s update", "Your %(site)s digest: %(count)s updates",
                               len(notifications)) % {"site": settings.SITE_NAME, "count": len(notifications)}
            for item in context["items"]:
                item["html"] = _optional(kinds.get(item["notification"].kind).template("digest_item.html"),
                                         {**context, **item})
            context["recommended"] = _recommended(user)
            text = render_plain("notifications/email/digest.txt", context)
            html = render_to_string("notifications/email/digest.html", context)
            attachments = []
        headers = {
            "Message-ID": make_msgid(domain=_domain()),
            "List-Unsubscribe": f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "Auto-Submitted": "auto-generated",
        }
        message = EmailMultiAlternatives(subject=" ".join(subject.split()), body=text, to=[user.email],
                                         headers=headers, connection=get_connection())
        message.attach_alternative(html, "text/html")
        for filename, content, mimetype in attachments:
            message.attach(filename, content, mimetype)
        return message


DIGEST_RECOMMENDED = 3


def _recommended(user):
    """A few homes recommended to the person, for the digest ([] when the recommender fails:
    the digest goes out anyway)."""
    from recommendations.serving import recommended_listings

    try:
        return [{"title": listing.title, "city": listing.city, "price": listing.price, "currency": listing.currency,
                 "url": absolute(f"/listings/{listing.pk}/")}
                for listing in recommended_listings(user, limit=DIGEST_RECOMMENDED)]
    except Exception:
        logger.warning("no recommendations for the digest of user %s", user.pk, exc_info=True)
        return []


def absolute(url):
    if not url or url.startswith(("http://", "https://")):
        return url
    return settings.SITE_URL.rstrip("/") + url


def _domain():
    from urllib.parse import urlsplit

    return urlsplit(settings.SITE_URL).hostname or "realio.local"


def _optional(template_name, context):
    try:
        return select_template([template_name]).render(context)
    except TemplateDoesNotExist:
        return ""
