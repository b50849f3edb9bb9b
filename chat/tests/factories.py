import io

import factory
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts.tests.factories import UserFactory
from chat.models import Conversation, Message, ReadPosition
from listings.tests.factories import ListingFactory


class ConversationFactory(factory.django.DjangoModelFactory):
    """A customer's conversation about a listing with its agent (read positions at 0)."""

    class Meta:
        model = Conversation
        skip_postgeneration_save = True

    listing = factory.SubFactory(ListingFactory)
    customer = factory.SubFactory(UserFactory)
    agent = factory.LazyAttribute(lambda o: o.listing.agent)

    @factory.post_generation
    def read_positions(obj, create, extracted, **kwargs):
        if create:
            ReadPosition.objects.bulk_create([ReadPosition(conversation=obj, user_id=uid) for uid in obj.party_ids()])


class MessageFactory(factory.django.DjangoModelFactory):
    """A stored message (no delivery, no event: use chat.services.message_send for those)."""

    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    sender = factory.LazyAttribute(lambda o: o.conversation.customer)
    body = factory.Sequence(lambda n: f"Message {n}")


def png_upload(size=(40, 30), name="photo.png", exif=False):
    buffer = io.BytesIO()
    image = Image.new("RGB", size, (200, 100, 50))
    if exif:
        data = Image.Exif()
        data[0x010F] = "SecretCamera"  # Make
        image.save(buffer, "JPEG", exif=data)
        return SimpleUploadedFile(name.replace(".png", ".jpg"), buffer.getvalue(), content_type="image/jpeg")
    image.save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")
