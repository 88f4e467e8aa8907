"""Django admin in a real browser (Debian's Chromium driven by Playwright) against a real
gunicorn: log in, create an organization, change its plan, grant credits, create an API key
(shown once; it works against the API), revoke it (it stops working), upload a library
document that becomes ready; then the business: the organization list and page with the
balance and the usage chart, allowed domains ticked in the form and enforced by the API, the
ledger filtered by organization, and every list page without horizontal scrolling on a
1,280-pixel screen. A screenshot per step is saved under `test-artifacts/admin/` (or
`$EGRET_TEST_ARTIFACTS/admin/`)."""

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
                   "Category.objects.create(domain=d, code='eu', name='European Union'); "
                   "b = Domain.objects.create(slug='banking', name='Banking'); "
                   "Category.objects.create(domain=b, code='us', name='United States')")
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


def api_call(url: str, raw_key: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}{path}", data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {raw_key}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def assert_no_horizontal_scroll(page) -> None:
    """Neither the page nor the list's own scroll box (Django puts the results table in one)
    is wider than the 1,280-pixel screen."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, f"{page.url} is {width} px wide"
    boxes = page.evaluate("[...document.querySelectorAll('.results')].map("
                          "e => [e.scrollWidth, e.clientWidth])")
    for scroll_width, client_width in boxes:
        assert scroll_width <= client_width, \
            f"{page.url}: the list is {scroll_width} px wide in a {client_width} px box"


def test_operator_runs_an_organization_from_admin(served, artifacts, tmp_path):
    shots = iter(range(1, 100))

    def shot(page, name: str) -> None:
        page.screenshot(path=str(artifacts / f"{next(shots):02d}-{name}.png"), full_page=True)

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
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
        page.select_option("#id_category", label="privacy/eu")
        shot(page, "document-form")
        page.click("input[name=_save]")
        page.goto(f"{admin}knowledge/document/")
        row = page.locator("tr", has_text="Breach notification")
        assert "ready" in row.inner_text().lower()
        shot(page, "document-ready")
        assert_no_horizontal_scroll(page)

        # The business: a key of globex asks a question the library answers (1 credit).
        key = served.manage("apikey_create", "globex", "--name", "reporting").split()[-1]
        question = {"query": "How fast must we notify the supervisory authority of a breach?",
                    "domain": "privacy", "category": "eu", "mode": "compliance"}
        status, answer = api_call(served.url, key, "/v1/query/", question)
        assert (status, answer["credits_used"]) == (200, 1), answer
        other = {**question, "domain": "banking", "category": "us"}
        assert api_call(served.url, key, "/v1/query/", other)[0] == 200  # every domain

        page.goto(f"{admin}organizations/organization/")
        row = page.locator("#result_list tr", has_text="globex").inner_text()
        # 5,000 (starter) + 15,000 (upgrade) + 250 (grant) - 1 (the answer)
        assert "Professional" in row and "20249" in row and "hank@globex.example" in row
        shot(page, "organization-list")
        assert_no_horizontal_scroll(page)

        page.click("#result_list a >> text=globex")
        overview = page.inner_text("table.credits-overview")
        assert "Remaining (balance)\t20249" in overview and "Used\t1" in overview
        chart = page.locator("svg.usage-chart")
        assert chart.is_visible()
        assert chart.locator("rect.bar title", has_text="1 credits").count() == 1
        assert "key " in page.inner_text("table.latest-ledger")
        shot(page, "organization-page")

        page.check("input[name=allowed_domains][value=privacy]")
        shot(page, "allowed-domains-ticked")
        page.click("input[name=_continue]")
        assert page.is_checked("input[name=allowed_domains][value=privacy]")
        assert not page.is_checked("input[name=allowed_domains][value=banking]")
        status, body = api_call(served.url, key, "/v1/query/", other)
        assert (status, body["detail"]) == (
            403, "Your organization does not have access to this domain.")
        assert api_call(served.url, key, "/v1/query/", question)[0] == 200

        page.click("a.all-ledger")
        assert "organization__id__exact=" in page.url
        rows = page.locator("#result_list tbody tr")
        assert rows.count() >= 5  # grant, adjustment, top-up, three queries (one refunded)
        for index in range(rows.count()):
            assert "globex" in rows.nth(index).inner_text()
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d",
                         rows.first.inner_text())  # to the second
        assert "key " in page.inner_text("#result_list")
        shot(page, "ledger-of-globex")
        assert_no_horizontal_scroll(page)

        for name, path in (("api-keys", "organizations/apikey/"),
                           ("ledger", "billing/ledgerentry/"),
                           ("documents", "knowledge/document/")):
            page.goto(f"{admin}{path}")
            shot(page, f"list-{name}")
            assert_no_horizontal_scroll(page)
        browser.close()
