"""Hostile requests against a served instance (API.md 1, 7, 9): each one is answered with a
4xx JSON error that has a `detail`, and changes nothing (no credit moves, no document, no
session); the service keeps answering afterwards. Requests gunicorn refuses before Django
sees them (oversized headers) are out of the contract's scope: no 5xx is all they owe."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.knowledge.files import make_pdf, zip_bomb_docx
from tests.system.support import QUESTION, Reply, ServedDatabase, call, multipart, serving

pytestmark = pytest.mark.django_db

MB = 1024 * 1024


@pytest.fixture(scope="module")
def served(server_db, tmp_path_factory):
    with serving(server_db, tmp_path_factory.mktemp("hostile")) as app:
        app.books = ServedDatabase(app.database_url)
        app.media_root = (app.tmp_path / "var" / "media").resolve()
        yield app


@pytest.fixture
def unchanged(served):
    """Asserts, after the test, that the demo organization's books and content are as they
    were, and that the service still answers a plain request."""
    before = served.books.snapshot()
    yield
    assert served.books.snapshot() == before
    assert served.books.balance() == served.books.ledger_sum()
    assert call(served.port, "GET", "/health/").status == 200


def query(served, raw: bytes, **headers) -> Reply:
    return call(served.port, "POST", "/v1/query/", body=raw, key=served.api_key,
                headers={"Content-Type": "application/json", **headers})


def upload(served, content: bytes, filename_header: str, **fields) -> Reply:
    body, content_type = multipart(fields, filename_header=filename_header, content=content)
    return call(served.port, "POST", "/v1/documents/", body=body, key=served.api_key,
                headers={"Content-Type": content_type})


def test_a_normal_query_is_answered_and_charged(served):
    """The control: the same question, well-formed, costs one credit."""
    before = served.books.balance()
    reply = query(served, json.dumps(QUESTION).encode())
    assert reply.status == 200, reply.body[:500]
    assert served.books.balance() == before - 1


def test_oversized_json_body_is_refused_without_a_charge(served, unchanged):
    # An otherwise valid question padded to 30 MB with a field the API ignores.
    raw = json.dumps({**QUESTION, "padding": "x" * (30 * MB)}).encode()
    reply = query(served, raw)
    assert reply.status == 413 and reply.is_json_error, (reply.status, reply.body[:300],
                                                         served.logs())
    assert "limit" in reply.json()["detail"]


def test_oversized_query_field_is_refused(served, unchanged):
    raw = json.dumps({**QUESTION, "query": "compliance " * (3 * MB)}).encode()
    reply = query(served, raw)
    assert reply.status in (400, 413) and reply.is_json_error, (reply.status, reply.body[:300],
                                                                served.logs())


@pytest.mark.parametrize("nesting", ["[", '{"a":'])
def test_deeply_nested_json_is_a_400(served, unchanged, nesting):
    depth = 100_000
    closing = "]" if nesting == "[" else "}"
    raw = ('{"query": ' + nesting * depth + "1" + closing * depth + ', "domain": '
           '"business-continuity", "category": "us", "mode": "compliance"}').encode()
    reply = query(served, raw)
    assert reply.status == 400 and reply.is_json_error, (reply.status, reply.body[:300],
                                                         served.logs())
    assert "nested too deeply" in reply.json()["detail"]


@pytest.mark.parametrize("raw", [
    b'{"query": "How often \xff\xfe review?", "domain": "business-continuity", '
    b'"category": "us", "mode": "compliance"}',
    b'{"query": "\xc3\x28 overlong \xe0\x80\xaf", "domain": "business-continuity", '
    b'"category": "us", "mode": "compliance"}',
    b"\xef\xbb\xbf\xed\xa0\x80",  # a BOM, then an encoded lone surrogate
], ids=["invalid-bytes", "overlong-sequences", "lone-surrogate"])
def test_invalid_utf8_is_a_400(served, unchanged, raw):
    reply = query(served, raw)
    assert reply.status == 400 and reply.is_json_error, (reply.status, reply.body[:300])


@pytest.mark.parametrize("field", ["query", "domain", "category", "mode"])
def test_nul_characters_are_a_400(served, unchanged, field):
    body = {**QUESTION, field: QUESTION[field][:5] + "\u0000" + QUESTION[field][5:]}
    reply = query(served, json.dumps(body).encode())
    assert reply.status == 400 and reply.is_json_error, (reply.status, reply.body[:300])
    if field == "query":
        assert reply.json()["detail"].startswith("query:")


def test_raw_nul_byte_in_the_body_is_a_400(served, unchanged):
    raw = json.dumps(QUESTION).encode().replace(b"How often", b"How\x00often")
    reply = query(served, raw)
    assert reply.status == 400 and reply.is_json_error, (reply.status, reply.body[:300])


def test_huge_header_gets_no_5xx_and_the_service_keeps_answering(served, unchanged):
    # gunicorn refuses a 100 KB header line itself (out of the contract's scope)...
    reply = query(served, json.dumps(QUESTION).encode(), **{"X-Padding": "a" * 100_000})
    assert 400 <= reply.status < 500
    # ...and so many headers that they add up to more than it accepts.
    many = {f"X-Padding-{n}": "b" * 1000 for n in range(200)}
    reply = query(served, json.dumps(QUESTION).encode(), **many)
    assert 400 <= reply.status < 500


def test_long_headers_that_reach_django_get_json_errors(served, unchanged):
    # Just under gunicorn's 8190-byte line limit: Django answers, with the error contract.
    reply = call(served.port, "GET", "/v1/billings/subscription/",
                 headers={"Authorization": "Bearer egret_" + "A" * 8000})
    assert reply.status == 401 and reply.is_json_error
    reply = call(served.port, "GET", "/v1/billings/subscription/", key=served.api_key,
                 headers={"X-Request-ID": "r" * 8000, "X-Organization": "o" * 8000})
    assert reply.status == 200
    assert len(reply.headers["x-request-id"]) <= 128  # not echoed: not a sane id


@pytest.mark.parametrize("filename_header", [
    'filename="../../etc/passwd.md"',
    'filename="..\\\\..\\\\windows\\\\win.md"',
    'filename="/etc/passwd.md"',
    "filename*=UTF-8''..%2F..%2F..%2Fetc%2Fshadow.md",
    'filename="....//....//etc/hosts.md"',
], ids=["dot-dot-slash", "backslashes", "absolute", "rfc2231-encoded", "doubled-dots"])
def test_path_traversal_in_an_upload_name_cannot_leave_media_root(served, filename_header):
    marker = f"traversal {filename_header}"
    content = (f"# Escape attempt\n\nThis document was uploaded as {marker}. It must be "
               "stored under the media root and nowhere else.\n").encode()
    before = served.books.snapshot()
    reply = upload(served, content, filename_header)
    assert reply.status in (200, 202, 400), (reply.status, reply.body[:300])
    assert served.books.balance() == before["balance"]  # uploads never spend credits
    if reply.status == 400:
        assert reply.is_json_error
        assert served.books.snapshot() == before
        return
    document = reply.json()
    filename = document["filename"]
    assert "/" not in filename and "\\" not in filename and filename not in ("", ".", "..")
    stored = served.books.value("SELECT file FROM knowledge_document WHERE id = %s",
                                (uuid.UUID(document["id"]),))
    path = (served.media_root / stored).resolve()
    assert path.is_relative_to(served.media_root), stored
    assert path.read_bytes() == content
    # Nothing was written where the name pointed.
    for escaped in (served.tmp_path / "etc", served.tmp_path / "var" / "etc",
                    Path("/etc/shadow.md"), Path("/etc/passwd.md"), Path("/etc/hosts.md")):
        assert not escaped.exists() or marker.encode() not in (
            escaped.read_bytes() if escaped.is_file() else b"")
    download = call(served.port, "GET", f"/v1/documents/{document['id']}/download/",
                    key=served.api_key)
    assert download.status == 200 and download.body == content
    assert call(served.port, "DELETE", f"/v1/documents/{document['id']}/",
                key=served.api_key).status == 204


@pytest.mark.parametrize("filename_header", ['filename=".."', 'filename="."',
                                             'filename="../"'])
def test_upload_name_with_nothing_left_after_sanitising_is_a_400(served, unchanged,
                                                                filename_header):
    reply = upload(served, b"# Title\n\nSome text.\n", filename_header)
    assert reply.status == 400 and reply.is_json_error, (reply.status, reply.body[:300])


def test_zip_bomb_disguised_as_docx_is_a_400(served, unchanged):
    reply = upload(served, zip_bomb_docx(), 'filename="quarterly-report.docx"')
    assert reply.status == 400 and reply.is_json_error, (reply.status, reply.body[:300])
    assert "zip bomb" in reply.json()["detail"]


def test_pdf_with_javascript_is_a_400(served, unchanged):
    pdf = make_pdf(["Business continuity policy.\nReview it every year."], javascript=True)
    reply = upload(served, pdf, 'filename="policy.pdf"')
    assert reply.status == 400 and reply.is_json_error, (reply.status, reply.body[:300])
    assert "JavaScript" in reply.json()["detail"]


def test_upload_over_the_size_limit_is_a_413(served, unchanged):
    content = b"# Big\n\n" + b"compliance text " * (30 * MB // 16)
    reply = upload(served, content, 'filename="big.md"')
    assert reply.status == 413 and reply.is_json_error, (reply.status, reply.body[:300])


def test_after_all_that_the_service_still_answers(served):
    before = served.books.balance()
    reply = query(served, json.dumps(QUESTION).encode())
    assert reply.status == 200 and reply.json()["credits_used"] == 1
    assert served.books.balance() == before - 1 == served.books.ledger_sum()
