"""Chat pages: the inbox (`/messages/`, also where "Contact the agent" lands) and a
conversation, live over `/ws/chat/{id}/` (static/js/chat.js) and usable without JavaScript."""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from chat import realtime, selectors, services
from realio.errors import ApplicationError

HISTORY_PAGE = 50


@never_cache
@login_required
@require_GET
def inbox(request):
    """The inbox; with `?listing=ID` (the listing page's "Contact the agent"), the customer's
    conversation about that listing, opened if needed (idempotent: one per customer and listing)."""
    listing_id = request.GET.get("listing")
    if listing_id is not None:
        try:
            conversation, _created = services.conversation_start(user=request.user, listing_id=listing_id)
        except ApplicationError as exc:
            messages.error(request, exc.detail)
            return redirect("messages_inbox")
        return redirect("conversation_page", pk=conversation.pk)
    page = Paginator(selectors.conversations_of(request.user), 30).get_page(request.GET.get("page"))
    rows = [_inbox_row(conversation, request.user) for conversation in page]
    return render(request, "chat/inbox.html", {"page": page, "rows": rows})


def _inbox_row(conversation, user):
    other = conversation.agent if user.pk == conversation.customer_id else conversation.customer
    photo = next(iter(conversation.listing.photos.all()), None)
    return {"conversation": conversation, "other": other, "photo": photo, "last": conversation.last_message}


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def conversation_page(request, pk):
    conversation = selectors.conversation_of(request.user, pk)
    if conversation is None:
        raise Http404(_("No such conversation."))
    if request.method == "POST":  # the form without JavaScript (chat.js sends over the socket)
        try:
            services.message_send(conversation_id=conversation.pk, sender=request.user,
                                  body=request.POST.get("body", ""), client_id=request.POST.get("client_id") or None,
                                  attachment=request.FILES.get("attachment"))
        except ApplicationError as exc:
            messages.error(request, exc.detail)
        return redirect(reverse("conversation_page", args=[conversation.pk]) + "#compose")

    history = selectors.latest_messages(conversation, limit=HISTORY_PAGE)
    other = conversation.agent if request.user.pk == conversation.customer_id else conversation.customer
    last_from_other = next((m.pk for m in reversed(history) if m.sender_id != request.user.pk), None)
    if last_from_other and last_from_other > conversation.my_read:
        services.message_read(conversation_id=conversation.pk, user=request.user, message_id=last_from_other)
    other_read = selectors.read_position_of(conversation.pk, other.pk)
    rows = [{"message": m, "mine": m.sender_id == request.user.pk, "created_at": realtime.iso(m.created_at),
             "attachment": realtime.attachment_url(m)} for m in history]
    seen_id = max((m.pk for m in history if m.sender_id == request.user.pk and m.pk <= other_read), default=None)
    return render(request, "chat/conversation.html", {
        "conversation": conversation, "listing": conversation.listing, "other": other, "rows": rows,
        "photo": next(iter(conversation.listing.photos.all()), None), "other_read": other_read, "seen_id": seen_id,
        "has_older": len(history) == HISTORY_PAGE, "client_id": uuid.uuid4().hex,
        "messages_api": reverse("api-messages", args=[conversation.pk]),
        "can_write": other.deleted_at is None,
    })
