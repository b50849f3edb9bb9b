"""The shared image check: content decides, limits hold, metadata is stripped."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from realio.errors import ApplicationError, TooLarge
from realio.images import image_check


def make_image(fmt="PNG", size=(40, 30), exif=None, name=None):
    buffer = io.BytesIO()
    image = Image.new("RGB", size, (200, 120, 40))
    kwargs = {"exif": exif} if exif is not None else {}
    image.save(buffer, fmt, **kwargs)
    return SimpleUploadedFile(name or f"photo.{fmt.lower()}", buffer.getvalue())


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_accepts_the_three_formats(fmt):
    checked = image_check(make_image(fmt))

    assert checked.format == fmt
    assert (checked.width, checked.height) == (40, 30)
    assert Image.open(io.BytesIO(checked.file.read())).format == fmt


def test_the_name_does_not_decide():
    checked = image_check(make_image("PNG", name="holiday.jpg"))

    assert checked.format == "PNG" and checked.file.name == "holiday.png"


def test_text_posing_as_an_image_is_refused():
    with pytest.raises(ApplicationError) as error:
        image_check(SimpleUploadedFile("x.png", b"<?php echo 'hi'; ?>", content_type="image/png"))

    assert error.value.status_code == 400


def test_other_image_formats_are_refused():
    with pytest.raises(ApplicationError) as error:
        image_check(make_image("GIF"))
    assert error.value.status_code == 400


def test_truncated_image_is_refused():
    data = make_image("PNG", size=(300, 300)).read()

    with pytest.raises(ApplicationError):
        image_check(SimpleUploadedFile("cut.png", data[: len(data) // 2]))


def test_empty_file_is_refused():
    with pytest.raises(ApplicationError):
        image_check(SimpleUploadedFile("empty.png", b""))


def test_too_many_bytes_is_413():
    with pytest.raises(TooLarge) as error:
        image_check(make_image("PNG", size=(200, 200)), max_bytes=100)

    assert error.value.status_code == 413


def test_too_many_pixels_is_413():
    with pytest.raises(TooLarge):
        image_check(make_image("PNG", size=(200, 200)), max_pixels=100 * 100)


def test_exif_including_location_is_stripped():
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x8825] = {2: (48.0, 51.0, 24.0)}  # GPSInfo
    upload = make_image("JPEG", exif=exif.tobytes())
    assert Image.open(io.BytesIO(upload.read())).getexif()
    upload.seek(0)

    checked = image_check(upload)

    assert not Image.open(io.BytesIO(checked.file.read())).getexif()
