"""GET /v1/domains/... (API.md 6): public, bare arrays, 404 for unknown or inactive."""

from knowledge import services
from knowledge.models import Category, Document, Domain


def add_library_document(domain, category, text: bytes, status=Document.Status.READY):
    document = services.document_create(data=text, filename="doc.md", domain=domain,
                                        category=category)
    Document.objects.filter(pk=document.pk).update(status=status)
    return document


def test_domains_list_is_public_and_counts_ready_library_documents(client, domain, category):
    Domain.objects.create(slug="hidden", name="Hidden", is_active=False)
    add_library_document(domain, category, b"# A\n\nOne.")
    add_library_document(domain, category, b"# B\n\nTwo.", status=Document.Status.FAILED)
    response = client.get("/v1/domains/")
    assert response.status_code == 200
    assert response.json() == [{
        "slug": "biotech", "name": "Biotech", "description": "",
        "categories": [{"code": "gmp", "name": "GMP"}], "document_count": 1}]


def test_private_documents_are_not_counted(client, domain, category, make_org, make_user):
    org = make_org(make_user("o@example.com"))
    services.document_create(data=b"# P\n\nPrivate.", filename="p.md", organization=org,
                             domain=domain, category=category)
    assert client.get("/v1/domains/").json()[0]["document_count"] == 0


def test_domain_detail_and_categories(client, domain, category):
    add_library_document(domain, category, b"# A\n\nOne.")
    Category.objects.create(domain=domain, code="clinical", name="Clinical", description="Trials")
    detail = client.get("/v1/domains/biotech/")
    assert detail.status_code == 200 and detail.json()["slug"] == "biotech"
    assert [c["code"] for c in detail.json()["categories"]] == ["clinical", "gmp"]
    categories = client.get("/v1/domains/biotech/categories/").json()
    assert categories == [
        {"code": "clinical", "name": "Clinical", "description": "Trials", "document_count": 0},
        {"code": "gmp", "name": "GMP", "description": "", "document_count": 1}]


def test_unknown_or_inactive_domain_is_404(client, domain):
    Domain.objects.create(slug="hidden", name="Hidden", is_active=False)
    for url in ("/v1/domains/nope/", "/v1/domains/hidden/", "/v1/domains/hidden/categories/"):
        response = client.get(url)
        assert response.status_code == 404
        assert response.json()["detail"] == "Domain not found."


def test_domain_list_query_count_does_not_grow_with_domains(client, db,
                                                           django_assert_num_queries):
    for i in range(5):
        d = Domain.objects.create(slug=f"d{i}", name=f"D{i}")
        Category.objects.create(domain=d, code="x", name="X")
    with django_assert_num_queries(2):
        assert len(client.get("/v1/domains/").json()) == 5


def test_catalogue_ignores_bad_credentials(client, domain):
    response = client.get("/v1/domains/", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert response.status_code == 200
