"""The account pages (profile, data download, deletion) and the site frame's security headers,
through Django's test client."""

import io
import json
from html.parser import HTMLParser

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.loader import render_to_string
from django.urls import reverse
from PIL import Image

from accounts.models import User
from accounts.tests.factories import PASSWORD, AgentFactory, UserFactory

pytestmark = pytest.mark.django_db


def png_bytes(size=(8, 8), colour=(200, 30, 30)):
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def profile_data(user, **changes):
    data = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "phone": str(user.phone or ""),
        "time_zone": user.time_zone,
        "language": user.language,
    }
    data.update(changes)
    return data


class ScriptTags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts = []

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts.append(dict(attrs))


def script_tags(html):
    parser = ScriptTags()
    parser.feed(html)
    return parser.scripts


@pytest.fixture
def user():
    return UserFactory(first_name="Ada", last_name="Lovelace")


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


# --- Profile -----------------------------------------------------------------------------------


@pytest.mark.parametrize("url_name", ["profile", "profile_export", "profile_delete"])
def test_account_pages_require_sign_in(client, url_name):
    response = client.get(reverse(url_name))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_profile_page_shows_the_details(signed_in, user):
    response = signed_in.get(reverse("profile"))

    assert response.status_code == 200
    html = response.content.decode()
    assert user.email in html
    assert 'value="Ada"' in html
    assert "Europe/Paris" in html  # the time zone select lists IANA names
    assert reverse("mfa_index") in html
    assert reverse("account_change_password") in html
    assert "agency" not in response.context["form"].fields  # customers have no professional details


def test_profile_edit_saves(signed_in, user):
    response = signed_in.post(reverse("profile"), profile_data(
        user, first_name="Augusta", phone="+33612345678", time_zone="Europe/Paris"))

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.first_name == "Augusta"
    assert str(user.phone) == "+33612345678"
    assert user.time_zone == "Europe/Paris"
    page = signed_in.get(response["Location"])
    assert "Your profile has been saved." in page.content.decode()


def test_profile_edit_with_a_bad_phone_shows_the_error_and_saves_nothing(signed_in, user):
    response = signed_in.post(reverse("profile"), profile_data(user, first_name="Changed", phone="12"))

    assert response.status_code == 200
    assert response.context["form"].errors["phone"]
    assert 'aria-invalid="true"' in response.content.decode()
    user.refresh_from_db()
    assert user.first_name == "Ada"
    assert str(user.phone or "") == ""


def test_profile_edit_rejects_an_unknown_time_zone(signed_in, user):
    response = signed_in.post(reverse("profile"), profile_data(user, time_zone="Mars/Olympus_Mons"))

    assert response.status_code == 200
    assert "time_zone" in response.context["form"].errors
    user.refresh_from_db()
    assert user.time_zone == "UTC"


def test_avatar_upload_stores_the_image(signed_in, user):
    upload = SimpleUploadedFile("me.png", png_bytes(), content_type="image/png")

    response = signed_in.post(reverse("profile"), {**profile_data(user), "avatar": upload})

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.avatar.name.startswith("avatars/")
    assert user.avatar.name.endswith(".png")
    with Image.open(user.avatar.path) as stored:
        assert stored.format == "PNG"
        assert stored.size == (8, 8)
    user.avatar.delete(save=False)


def test_a_text_file_posing_as_png_is_rejected(signed_in, user):
    upload = SimpleUploadedFile("me.png", b"just some text, not an image", content_type="image/png")

    response = signed_in.post(reverse("profile"), {**profile_data(user, first_name="Changed"), "avatar": upload})

    assert response.status_code == 200
    assert response.context["form"].errors["avatar"] == ["Send a JPEG, PNG or WebP image."]
    user.refresh_from_db()
    assert not user.avatar
    assert user.first_name == "Ada"


def test_an_agent_edits_professional_details(client):
    agent = AgentFactory()
    client.force_login(agent)

    response = client.post(reverse("profile"), profile_data(
        agent, agency="Maison & Co", licence_number="CPI-7501", bio="Paris flats.",
        languages="French, English", service_areas="Paris 11e"))

    assert response.status_code == 302
    agent.agent_profile.refresh_from_db()
    assert agent.agent_profile.agency == "Maison & Co"
    assert agent.agent_profile.service_areas == "Paris 11e"
    assert "Maison &amp; Co" in client.get(reverse("profile")).content.decode()


# --- Export and deletion -------------------------------------------------------------------------


def test_export_downloads_json_with_the_email(signed_in, user):
    response = signed_in.get(reverse("profile_export"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "no-store" in response["Cache-Control"]
    assert json.loads(response.content)["account"]["email"] == user.email


def test_delete_page_asks_for_confirmation(signed_in, user):
    response = signed_in.get(reverse("profile_delete"))

    assert response.status_code == 200
    assert 'name="password"' in response.content.decode()
    user.refresh_from_db()
    assert user.is_active


def test_delete_with_a_wrong_password_is_refused(signed_in, user):
    email = user.email

    response = signed_in.post(reverse("profile_delete"), {"password": "not-my-password"})

    assert response.status_code == 200
    assert response.context["form"].errors["password"] == ["The password is not correct."]
    user.refresh_from_db()
    assert user.email == email
    assert user.is_active
    assert signed_in.get(reverse("profile")).status_code == 200  # still signed in


def test_delete_with_the_password_anonymises_and_signs_out(signed_in, user):
    email = user.email

    response = signed_in.post(reverse("profile_delete"), {"password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    user.refresh_from_db()
    assert user.email != email
    assert not user.is_active
    assert user.deleted_at is not None
    assert not User.objects.filter(email=email).exists()
    home = signed_in.get(reverse("home"))
    assert not home.wsgi_request.user.is_authenticated
    assert "Your account has been deleted" in home.content.decode()
    assert signed_in.get(reverse("profile")).status_code == 302


# --- The frame: CSP, no inline script ---------------------------------------------------------------


def test_home_page_renders_with_a_strict_csp(client):
    response = client.get(reverse("home"))

    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert "script-src" in directives
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'unsafe-eval'" not in directives["script-src"]
    assert "'unsafe-inline'" not in directives.get("style-src", [])


@pytest.mark.parametrize("url_name", ["home", "account_login", "account_signup"])
def test_pages_have_no_inline_script(client, url_name):
    response = client.get(reverse(url_name))

    assert response.status_code == 200
    scripts = script_tags(response.content.decode())
    assert scripts, "the frame loads htmx and the site script"
    assert all(script.get("src") for script in scripts), scripts


def test_signed_in_frame_shows_the_user_menu(signed_in, user):
    html = signed_in.get(reverse("home")).content.decode()

    for url in ("/notifications/", "/messages/", "/bookings/", "/favorites/", reverse("profile")):
        assert f'href="{url}"' in html
    assert f'action="{reverse("account_logout")}"' in html
    assert reverse("admin:index") not in html  # customers have no admin door


def test_the_admin_link_is_shown_to_users_with_admin_access(client):
    client.force_login(AgentFactory())

    assert reverse("admin:index") in client.get(reverse("home")).content.decode()


@pytest.mark.parametrize("url_name", ["account_login", "account_signup", "account_reset_password"])
def test_allauth_pages_render_in_the_site_frame(client, url_name):
    html = client.get(reverse(url_name)).content.decode()

    assert 'class="site-header"' in html
    assert 'href="#main"' in html


@pytest.mark.parametrize("url_name", ["account_email", "account_change_password", "mfa_index",
                                      "account_logout"])
def test_allauth_account_pages_render_in_the_site_frame(signed_in, url_name):
    response = signed_in.get(reverse(url_name))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="site-header"' in html
    assert 'class="account-nav"' in html


def test_totp_activation_renders_in_the_site_frame(signed_in):
    activate = reverse("mfa_activate_totp")
    reauthenticate = signed_in.get(activate)
    assert reauthenticate.status_code == 302  # allauth asks for the password again first
    signed_in.post(reauthenticate["Location"], {"password": PASSWORD})

    response = signed_in.get(activate)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="account-nav"' in html
    assert 'class="qr-code"' in html
    assert all(script.get("src") for script in script_tags(html))


def test_a_missing_page_is_answered_in_the_site_frame(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html
    assert 'class="site-header"' in html


def test_the_server_error_page_needs_no_request():
    html = render_to_string("500.html")

    assert "Something went wrong" in html
    assert "/static/css/site.css" in html
