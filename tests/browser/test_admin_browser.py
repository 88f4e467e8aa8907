"""Django admin in a real browser (Debian's Chromium driven by Playwright) against a real
gunicorn: log in, create an organization, change its plan, grant credits, create an API key
(shown once; it works against the API), revoke it (it stops working), upload a library
document that becomes ready. A screenshot per step is saved under
`test-artifacts/admin/` (or `$EGRET_TEST_ARTIFACTS/admin/`)."""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.servers import ROOT, ServedApp

CHROMIUM = os.environ.get("EGRET_CHROMIUM", "/usr/bin/chromium")
EMAIL, PASSWORD = "operator@example.com", "a-long-operator-password-42"
KEY_RE = re.compile(r"egret_[0-9A-Za-z]{40}")

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def served(tmp_path):
    with ServedApp(tmp_path, library=False, collectstatic=True, env={
        "DJANGO_SUPERUSER_EMAIL": EMAIL, "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
    }) as app:
        app.manage("createsuperuser", "--noinput")
        app.manage("shell", "-c", "from knowledge.models import Domain, Category; "
                   "d = Domain.objects.create(slug='privacy', name='Privacy'); "
                   "Category.objects.create(domain=d, code='eu', name='European Union')")
        yield app


@pytest.fixture
def artifacts() -> Path:
    folder = Path(os.environ.get("EGRET_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "admin"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    return folder


def api_status(url: str, raw_key: str) -> int:
    request = urllib.request.Request(f"{url}/v1/billings/subscription/",
                                     headers={"Authorization": f"Bearer {raw_key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            json.loads(response.read())
            return response.status
    except urllib.error.HTTPError as error:
        assert "detail" in json.loads(error.read())
        return error.code


def test_operator_runs_an_organization_from_admin(served, artifacts, tmp_path):
    shots = iter(range(1, 100))

    def shot(page, name: str) -> None:
        page.screenshot(path=str(artifacts / f"{next(shots):02d}-{name}.png"), full_page=True)

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page()
        page.set_default_timeout(20_000)
        admin = f"{served.url}/admin/"

        page.goto(f"{admin}login/")
        page.fill("#id_username", EMAIL)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(admin)
        shot(page, "logged-in")

        page.goto(f"{admin}organizations/organization/add/")
        page.fill("#id_name", "Globex")
        page.fill("#id_slug", "globex")
        page.fill("#id_owner_email", "hank@globex.example")
        page.select_option("#id_plan_choice", "starter")
        shot(page, "organization-form")
        page.click("input[name=_save]")
        page.wait_for_selector("text=globex")
        shot(page, "organization-created")

        def run_action(action: str, **fields: str) -> str:
            page.goto(f"{admin}organizations/organization/?q=globex")
            page.check("input[name=_selected_action]")
            page.select_option("select[name=action]", action)
            for name, value in fields.items():
                if name == "plan":
                    page.select_option("select[name=plan]", value)
                else:
                    page.fill(f"input[name={name}]", value)
            page.click("button[name=index]")
            return page.inner_text("ul.messagelist")

        message = run_action("change_plan", plan="professional")
        assert "is now on professional" in message
        shot(page, "plan-changed")
        message = run_action("grant_credits", amount="250", memo="pilot bonus")
        assert "+250 credits" in message
        shot(page, "credits-granted")

        page.goto(f"{admin}organizations/apikey/add/")
        page.click(".field-organization .select2-selection")  # the autocomplete widget
        page.fill(".select2-search__field", "globex")
        page.click(".select2-results__option >> text=globex")
        page.fill("#id_name", "browser-test")
        page.click("input[name=_save]")
        raw_key = KEY_RE.search(page.inner_text("code.api-key-secret")).group(0)
        shot(page, "api-key-created")
        assert api_status(served.url, raw_key) == 200
        page.goto(f"{admin}organizations/apikey/")
        assert raw_key not in page.content()  # shown once, never again

        page.check("input[name=_selected_action]")
        page.select_option("select[name=action]", "revoke_keys")
        page.click("button[name=index]")
        assert "Revoked 1 key(s)." in page.inner_text("ul.messagelist")
        shot(page, "api-key-revoked")
        assert api_status(served.url, raw_key) == 401

        document = tmp_path / "breach-notification.md"
        document.write_text("# Breach notification\n\n## Deadline\n\nNotify the supervisory "
                            "authority within 72 hours of becoming aware of a breach.\n")
        page.goto(f"{admin}knowledge/document/add/")
        page.set_input_files("#id_upload", str(document))
        page.fill("#id_title", "Breach notification")
        page.select_option("#id_domain", label="Privacy")
        page.select_option("#id_category", index=1)
        shot(page, "document-form")
        page.click("input[name=_save]")
        page.goto(f"{admin}knowledge/document/")
        row = page.locator("tr", has_text="Breach notification")
        assert "ready" in row.inner_text().lower()
        shot(page, "document-ready")
        browser.close()
