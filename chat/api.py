"""Chat API (`/api/v1/`): `conversations/`, their messages, read positions and attachments
(DESIGN.md section 5). Only the two parties see a conversation: anyone else gets 404."""

from django.core.files.storage import storages
from django.http import FileResponse
from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound as DRFNotFound
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from chat import realtime, selectors, services
from chat.models import MAX_CLIENT_ID_LENGTH, Message
from listings.api import PersonSerializer
from realio.api import Pagination
from realio.errors import ApplicationError, NotFound


def _absolute(request, url):
    return request.build_absolute_uri(url) if request is not None and url else url


class MessageSerializer(serializers.Serializer):
    """A message as both parties read it (the socket's `message` frame carries the same)."""

    id = serializers.IntegerField()
    sender = PersonSerializer()
    body = serializers.CharField()
    created_at = serializers.DateTimeField()
    client_id = serializers.CharField(allow_null=True)
    attachment = serializers.URLField(allow_null=True, help_text="The attached image, for the two parties only.")
    edited = serializers.BooleanField()
    deleted = serializers.BooleanField()

    def to_representation(self, message):
        data = realtime.message_payload(message)
        data["attachment"] = _absolute(self.context.get("request"), data["attachment"])
        return data


class ConversationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    listing = serializers.IntegerField(source="listing_id")
    customer = PersonSerializer()
    agent = PersonSerializer()
    last_message_at = serializers.DateTimeField(allow_null=True)
    unread = serializers.IntegerField(help_text="The other party's messages after the caller's read position.")
    listing_title = serializers.CharField(source="listing.title")
    listing_thumbnail_url = serializers.SerializerMethodField()
    last_message = serializers.SerializerMethodField()

    def get_listing_thumbnail_url(self, conversation) -> str | None:
        photo = next(iter(conversation.listing.photos.all()), None)
        return _absolute(self.context.get("request"), photo.thumbnail_url) if photo else None

    @extend_schema(responses=MessageSerializer(allow_null=True))
    def get_last_message(self, conversation) -> dict | None:
        message = conversation.last_message
        return MessageSerializer(message, context=self.context).data if message else None


class ConversationCreateSerializer(serializers.Serializer):
    listing = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class MessageCreateSerializer(serializers.Serializer):
    # No max_length on the body: the service answers 413 with the limit in words.
    body = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, default="")
    client_id = serializers.CharField(required=False, allow_null=True, allow_blank=True,
                                      max_length=MAX_CLIENT_ID_LENGTH,
                                      help_text="Your own id for the message: sending it again returns the "
                                                "stored message instead of a second one.")
    attachment = serializers.FileField(required=False, allow_null=True,
                                       help_text="A JPEG, PNG or WebP image (multipart).")


class ReadSerializer(serializers.Serializer):
    message_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)


class MessagePagination(CursorPagination):
    """Cursor pages of a conversation's history: each page oldest → newest; the first page
    holds the latest messages and `previous` leads to older ones, `next` back to newer ones."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 100

    def paginate_queryset(self, queryset, request, view=None):
        page = super().paginate_queryset(queryset, request, view)
        return list(reversed(page))

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except DRFNotFound:
            message = _("This cursor is not valid; follow the links of a previous page.")
            raise ApplicationError(f"cursor: {message}", errors={"cursor": [message]}) from None

    def get_paginated_response(self, data):
        # Newest first underneath: its "next" page is older (our `previous`), and vice versa.
        return Response({"next": self.get_previous_link(), "previous": self.get_next_link(), "results": data})

    def get_paginated_response_schema(self, schema):
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {"type": "object", "required": ["results"],
                "properties": {"next": link, "previous": link, "results": schema}}


class ConversationListView(ListAPIView):
    """The caller's conversations (newest activity first), and starting one about a listing."""

    serializer_class = ConversationSerializer
    pagination_class = Pagination

    def get_queryset(self):
        return selectors.conversations_of(self.request.user)

    @extend_schema(request=ConversationCreateSerializer,
                   responses={201: ConversationSerializer, 200: ConversationSerializer})
    def post(self, request):
        """A customer starts the conversation about a listing with its agent (201), or gets the
        one they have (200). Agents cannot start one (403): they reply."""
        data = ConversationCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        conversation, created = services.conversation_start(user=request.user,
                                                            listing_id=data.validated_data["listing"])
        body = self.get_serializer(selectors.conversation_of(request.user, conversation.pk)).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class ConversationDetailView(GenericAPIView):
    serializer_class = ConversationSerializer

    def get(self, request, conversation_id):
        conversation = selectors.conversation_of(request.user, conversation_id)
        if conversation is None:
            raise NotFound()
        return Response(self.get_serializer(conversation).data)


class MessageListView(GenericAPIView):
    """A conversation's history (cursor pages) and sending a message (JSON, or multipart with an
    image `attachment`). Delivered to the open sockets of both parties after it is stored."""

    serializer_class = MessageSerializer
    pagination_class = MessagePagination
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        conversation = services.access_conversation(conversation_id=self.kwargs["conversation_id"],
                                                    user=self.request.user)
        return selectors.messages_of(conversation)

    @extend_schema(parameters=[OpenApiParameter("cursor", str), OpenApiParameter("page_size", int)],
                   responses=inline_serializer("MessagePage", {
                       "next": serializers.URLField(allow_null=True), "previous": serializers.URLField(allow_null=True),
                       "results": MessageSerializer(many=True)}))
    def get(self, request, conversation_id):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request={"application/json": MessageCreateSerializer,
                            "multipart/form-data": MessageCreateSerializer},
                   responses={201: MessageSerializer, 200: MessageSerializer})
    def post(self, request, conversation_id):
        """201 with the stored message; 200 with the one stored before for a repeated client_id."""
        data = MessageCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        message, created = services.message_send(
            conversation_id=conversation_id, sender=request.user, body=data.validated_data.get("body", ""),
            client_id=data.validated_data.get("client_id"), attachment=data.validated_data.get("attachment"))
        return Response(self.get_serializer(message).data,
                        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class ReadView(APIView):
    @extend_schema(request=ReadSerializer, responses=ReadSerializer)
    def post(self, request, conversation_id):
        """Mark the conversation read up to a message (positions only move forward); the other
        party's open sockets get a `read` frame."""
        data = ReadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        position = services.message_read(conversation_id=conversation_id, user=request.user,
                                         message_id=data.validated_data["message_id"])
        return Response({"message_id": position})


class AttachmentView(APIView):
    """A message's image, for the conversation's two parties only (session or Bearer token)."""

    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY})
    def get(self, request, conversation_id, message_id):
        conversation = services.access_conversation(conversation_id=conversation_id, user=request.user)
        message = Message.objects.filter(conversation=conversation, pk=message_id).exclude(attachment="").first()
        if message is None:
            raise NotFound()
        try:
            handle = storages["private"].open(message.attachment.name, "rb")
        except (OSError, FileNotFoundError):
            raise NotFound() from None
        response = FileResponse(handle, content_type=message.attachment_type or "application/octet-stream")
        extension = message.attachment.name.rsplit(".", 1)[-1]
        response["Content-Disposition"] = f'inline; filename="message-{message.pk}.{extension}"'
        # Private: never kept by a shared cache.
        response["Cache-Control"] = "private, max-age=3600"
        return response


urlpatterns = [
    path("conversations/", ConversationListView.as_view(), name="api-conversations"),
    path("conversations/<int:conversation_id>/", ConversationDetailView.as_view(), name="api-conversation"),
    path("conversations/<int:conversation_id>/messages/", MessageListView.as_view(), name="api-messages"),
    path("conversations/<int:conversation_id>/read/", ReadView.as_view(), name="api-conversation-read"),
    path("conversations/<int:conversation_id>/messages/<int:message_id>/attachment/", AttachmentView.as_view(),
         name="api-message-attachment"),
]
