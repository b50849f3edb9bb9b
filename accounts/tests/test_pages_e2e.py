"""Signing up, in and out and editing the profile in Chromium, against the ASGI site.

Run in their own process: `pytest -m e2e` (Playwright keeps an event loop in the main thread).
"""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.e2e


def sign_in(page, base_url, email, password):
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.locator("#id_password").fill(password)
    page.get_by_role("button", name="Sign In").click()


def user_menu(page):
    return page.locator("details.menu")


def sign_in_link(page):
    return page.get_by_role("navigation", name="Account").get_by_role("link", name="Sign in")


def test_sign_up_as_a_customer_lands_signed_in(page, live_asgi_server, console_errors):
    page.goto(f"{live_asgi_server}/accounts/signup/")

    page.get_by_label("First name").fill("Grace")
    page.get_by_label("Last name").fill("Hopper")
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_label("looking for a home").check()
    page.locator("#id_password1").fill("a-long-and-unusual-passphrase-42")
    page.locator("#id_password2").fill("a-long-and-unusual-passphrase-42")
    page.get_by_role("button", name="Sign Up").click()

    expect(page).to_have_url(f"{live_asgi_server}/")
    expect(user_menu(page)).to_contain_text("Grace")
    expect(sign_in_link(page)).to_have_count(0)
    user = User.objects.get(email="grace@example.com")
    assert (user.role, user.first_name, user.last_name) == ("customer", "Grace", "Hopper")
    assert console_errors == []


def test_sign_out_from_the_user_menu(page, live_asgi_server):
    user = UserFactory()
    sign_in(page, live_asgi_server, user.email, PASSWORD)
    expect(user_menu(page)).to_be_visible()

    user_menu(page).locator("summary").click()
    page.get_by_role("button", name="Sign out").click()

    expect(page).to_have_url(f"{live_asgi_server}/")
    expect(sign_in_link(page)).to_be_visible()
    expect(user_menu(page)).to_have_count(0)


def test_sign_in_with_a_wrong_password_shows_an_error(page, live_asgi_server):
    user = UserFactory()

    sign_in(page, live_asgi_server, user.email, "not-the-password")

    expect(page.get_by_role("alert")).to_contain_text("not correct")
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(user_menu(page)).to_have_count(0)


def test_sign_in_with_the_right_password(page, live_asgi_server):
    user = UserFactory(first_name="Katherine")

    sign_in(page, live_asgi_server, user.email, PASSWORD)

    expect(page).to_have_url(f"{live_asgi_server}/")
    expect(user_menu(page)).to_contain_text("Katherine")
    user_menu(page).locator("summary").click()
    expect(page.get_by_role("link", name="Profile")).to_be_visible()
    expect(page.get_by_role("link", name="Notifications")).to_be_visible()


def test_edit_the_profile(page, live_asgi_server, console_errors):
    user = UserFactory(first_name="Dorothy")
    sign_in(page, live_asgi_server, user.email, PASSWORD)
    user_menu(page).locator("summary").click()
    page.get_by_role("link", name="Profile").click()
    expect(page.get_by_role("heading", name="Profile", level=1)).to_be_visible()

    page.get_by_label("Phone").fill("12")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_label("Phone")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("First name").fill("Dot")
    page.get_by_label("Phone").fill("+33612345678")
    page.get_by_label("Time zone").select_option("Europe/Paris")
    page.get_by_role("button", name="Save changes").click()

    expect(page.get_by_role("status")).to_contain_text("Your profile has been saved.")
    expect(user_menu(page)).to_contain_text("Dot")
    user.refresh_from_db()
    assert (user.first_name, str(user.phone), user.time_zone) == ("Dot", "+33612345678", "Europe/Paris")
    assert console_errors == []


def test_delete_the_account(page, live_asgi_server):
    user = UserFactory()
    email = user.email
    sign_in(page, live_asgi_server, email, PASSWORD)
    page.goto(f"{live_asgi_server}/profile/")
    page.get_by_role("link", name="Delete my account").first.click()

    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Delete my account").click()

    expect(page).to_have_url(f"{live_asgi_server}/")
    expect(page.get_by_role("status")).to_contain_text("Your account has been deleted")
    expect(sign_in_link(page)).to_be_visible()
    user.refresh_from_db()
    assert not user.is_active
    assert user.email != email


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/accounts/signup/"])
def test_pages_load_without_console_errors_or_csp_violations(page, live_asgi_server, console_errors, path):
    page.goto(f"{live_asgi_server}{path}")

    assert page.evaluate("() => typeof window.htmx") == "object"  # the vendored htmx loaded
    assert console_errors == []


def test_the_console_check_sees_csp_violations(page, live_asgi_server, console_errors):
    # Guards the test above: an inline script injected into the page must be refused and reported.
    page.goto(f"{live_asgi_server}/accounts/login/")

    with page.expect_console_message(lambda message: "Content Security Policy" in message.text):
        page.evaluate("""() => {
            const script = document.createElement("script");
            script.textContent = "window.injected = true";
            document.body.append(script);
        }""")

    assert page.evaluate("() => window.injected") is None
    assert any("Content Security Policy" in error for error in console_errors), console_errors


def test_account_pages_load_without_console_errors(page, live_asgi_server, console_errors):
    user = UserFactory()
    sign_in(page, live_asgi_server, user.email, PASSWORD)

    for path in ("/profile/", "/profile/delete/", "/accounts/email/", "/accounts/password/change/",
                 "/accounts/2fa/"):
        page.goto(f"{live_asgi_server}{path}")
        expect(page.get_by_role("navigation", name="Account settings")).to_be_visible()

    assert console_errors == []
