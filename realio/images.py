"""The one image check for every upload (avatars, listing photos, chat attachments).

The content decides, never the name or the declared type: Pillow must open and fully decode
the file as JPEG, PNG or WebP within the byte and pixel limits. The stored image is
re-encoded without its metadata (EXIF, GPS), oriented as the camera meant.
"""

import io
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from realio.errors import ApplicationError, TooLarge

FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}


@dataclass(frozen=True)
class CheckedImage:
    file: SimpleUploadedFile
    format: str
    width: int
    height: int


def image_check(upload, *, max_bytes=None, max_pixels=None):
    """Validate an uploaded image and return it re-encoded without metadata.

    Raises TooLarge (413) beyond the byte or pixel limit, ApplicationError (400) for anything
    that is not a decodable JPEG, PNG or WebP.
    """
    max_bytes = max_bytes or settings.IMAGE_MAX_BYTES
    max_pixels = max_pixels or settings.IMAGE_MAX_PIXELS
    if upload is None:
        raise ApplicationError(_("No image was sent."))
    size = getattr(upload, "size", None)
    if size is not None and size > max_bytes:
        raise TooLarge(_("The image is larger than %(mb)s MB.") % {"mb": round(max_bytes / 1_048_576, 1)})
    data = upload.read()
    if len(data) > max_bytes:
        raise TooLarge(_("The image is larger than %(mb)s MB.") % {"mb": round(max_bytes / 1_048_576, 1)})
    if not data:
        raise ApplicationError(_("The file is empty."))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            probe = Image.open(io.BytesIO(data))
            fmt = probe.format
            width, height = probe.size
            if fmt not in FORMATS:
                raise ApplicationError(_("Send a JPEG, PNG or WebP image."))
            if width * height > max_pixels:
                raise TooLarge(_("The image has too many pixels (at most %(n)s).") % {"n": max_pixels})
            probe.verify()
            image = Image.open(io.BytesIO(data))
            image.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApplicationError(_("Send a JPEG, PNG or WebP image.")) from None
    except (OSError, SyntaxError, ValueError):
        raise ApplicationError(_("The image is damaged and cannot be read.")) from None

    image = ImageOps.exif_transpose(image)
    out = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=88, optimize=True)
    elif fmt == "PNG":
        image.save(out, "PNG", optimize=True)
    else:
        image.save(out, "WEBP", quality=88)
    content_type, extension = FORMATS[fmt]
    stem = (getattr(upload, "name", "") or "image").rsplit("/", 1)[-1].rsplit(".", 1)[0][:80] or "image"
    checked = SimpleUploadedFile(f"{stem}.{extension}", out.getvalue(), content_type=content_type)
    return CheckedImage(file=checked, format=fmt, width=image.width, height=image.height)
