"""The header's unread badge."""

from django import template

from notifications import selectors

register = template.Library()


@register.simple_tag
def unread_notifications(user):
    """The signed-in person's unread count (0 for anyone else)."""
    if not getattr(user, "is_authenticated", False):
        return 0
    return selectors.unread_count(user.pk)
