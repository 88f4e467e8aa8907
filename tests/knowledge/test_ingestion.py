"""Ingestion and retrieval through the services, on both databases."""

from django.core.files.storage import default_storage
from django.core.management import call_command

from knowledge import retrieval, services
from knowledge.models import Category, Chunk, Document, Domain
from tests.knowledge.files import corrupt_pdf, make_docx, make_pdf

BATCH = ("# Batch records\n\n## Retention\n\nKeep every executed batch record for at least "
         "seven years after the batch expires. Store the records where they cannot be altered.")
BREACH = ("# Breaches\n\n## Notification\n\nNotify the supervisory authority of a personal "
          "data breach within 72 hours of becoming aware of it.")


def ingest(data: bytes, name: str, **kwargs) -> Document:
    document = services.document_create(data=data, filename=name, **kwargs)
    assert document.status == Document.Status.PROCESSING
    return services.document_ingest(document.pk)


def test_markdown_is_ingested_into_chunks_with_sections(domain, category):
    document = ingest(BATCH.encode(), "batch.md", domain=domain, category=category)
    assert document.status == Document.Status.READY and document.error == ""
    chunks = list(document.chunks.all())
    assert document.chunk_count == len(chunks) >= 1
    assert chunks[0].section == "Retention"
    assert chunks[0].domain_id == domain.pk and chunks[0].organization_id is None
    assert default_storage.exists(document.file.name)


def test_pdf_keeps_page_numbers(domain, category):
    pdf = make_pdf(["Cleaning validation covers every product contact surface.",
                    "Swab samples are taken after the third consecutive cleaning run."])
    document = ingest(pdf, "cleaning.pdf", domain=domain, category=category)
    assert document.status == Document.Status.READY
    assert document.page_count == 2
    pages = {c.page for c in document.chunks.all()}
    assert pages <= {1, 2} and 1 in pages
    hits = retrieval.search("swab samples consecutive cleaning", domain=domain,
                            category=category, scope="public")
    assert hits and hits[0].document == document


def test_docx_is_ingested(domain, category):
    docx = make_docx([("Heading 1", "Supplier qualification"),
                      (None, "Audit each critical supplier before the first delivery.")])
    document = ingest(docx, "suppliers.docx", domain=domain, category=category)
    assert document.status == Document.Status.READY
    assert document.chunks.get().section == "Supplier qualification"


def test_corrupt_pdf_ends_failed_with_a_readable_error_and_no_chunks(domain, category):
    document = ingest(corrupt_pdf(), "broken.pdf", domain=domain, category=category)
    assert document.status == Document.Status.FAILED
    assert "damaged" in document.error
    assert document.chunk_count == 0 and not Chunk.objects.filter(document=document).exists()


def test_reingest_replaces_chunks(domain, category):
    document = ingest(BATCH.encode(), "batch.md", domain=domain, category=category)
    first_ids = set(document.chunks.values_list("pk", flat=True))
    again = services.document_ingest(document.pk)
    assert again.chunk_count == len(first_ids)
    assert not first_ids & set(again.chunks.values_list("pk", flat=True))
    assert Chunk.objects.count() == again.chunk_count


def test_search_ranks_the_answering_passage_first_with_scores_in_0_1(domain, category):
    batch = ingest(BATCH.encode(), "batch.md", domain=domain, category=category)
    ingest(BREACH.encode(), "breach.md", domain=domain, category=category)
    hits = retrieval.search("How long must batch records be kept?", domain=domain,
                            category=category)
    assert hits[0].document == batch
    assert all(0 <= h.score <= 1 for h in hits)
    assert hits == sorted(hits, key=lambda h: -h.score)
    assert hits[0].scope == "public"


def test_search_filters_by_domain_and_category_inside_the_query(domain, category):
    other_category = Category.objects.create(domain=domain, code="clinical", name="Clinical")
    other_domain = Domain.objects.create(slug="privacy", name="Privacy")
    ingest(BATCH.encode(), "a.md", domain=domain, category=other_category)
    ingest(BATCH.encode() + b" ", "b.md", domain=other_domain)
    assert retrieval.search("batch records retention", domain=domain, category=category) == []


def test_another_organizations_private_chunks_never_come_back(domain, category, make_org,
                                                                 make_user):
    acme = make_org(make_user("a@example.com"), slug="acme")
    rival = make_org(make_user("r@example.com"), slug="rival")
    mine = ingest(BATCH.encode(), "mine.md", organization=acme)
    theirs = ingest(BATCH.encode() + b"\n", "theirs.md", organization=rival)
    for scope in ("all", "private"):
        hits = retrieval.search("batch records retention", domain=domain, category=category,
                                organization=acme, scope=scope, limit=20)
        documents = {h.document for h in hits}
        assert mine in documents and theirs not in documents
        assert all(h.scope == "private" for h in hits)
    public_only = retrieval.search("batch records retention", domain=domain,
                                   category=category, organization=acme, scope="public")
    assert public_only == []


def test_private_document_of_another_domain_is_excluded(domain, category, make_org, make_user):
    acme = make_org(make_user("a@example.com"), slug="acme")
    privacy = Domain.objects.create(slug="privacy", name="Privacy")
    ingest(BATCH.encode(), "p.md", organization=acme, domain=privacy)
    assert retrieval.search("batch records", domain=domain, category=category,
                            organization=acme) == []


def test_delete_removes_chunks_from_the_index_at_once(domain, category,
                                                     django_capture_on_commit_callbacks):
    document = ingest(BATCH.encode(), "batch.md", domain=domain, category=category)
    name = document.file.name
    with django_capture_on_commit_callbacks(execute=True):
        services.document_delete(document)
    assert retrieval.search("batch records", domain=domain, category=category) == []
    assert not Chunk.objects.exists()
    assert not default_storage.exists(name)


def test_empty_or_stopword_query_returns_nothing(domain, category):
    ingest(BATCH.encode(), "batch.md", domain=domain, category=category)
    assert retrieval.search("the and of", domain=domain, category=category) == []
    assert retrieval.search("   ", domain=domain, category=category) == []


def test_demo_library_loads_and_lexical_recall_meets_the_bar(db, capsys):
    call_command("egret_demo")
    out = capsys.readouterr().out
    assert "36 documents added" in out
    assert Document.objects.filter(status=Document.Status.READY,
                                   organization__isnull=True).count() == 36
    call_command("egret_demo")  # idempotent: nothing added twice
    assert Document.objects.count() == 36
    from knowledge.management.commands.retrieval_eval import EVAL_DIR, evaluate
    import json

    questions = json.loads((EVAL_DIR / "questions.json").read_text())
    assert len(questions) >= 60
    result = evaluate(questions, "lexical")
    assert result["recall_at_5"] >= 0.8, result
    call_command("retrieval_eval")
    assert "recall@5" in capsys.readouterr().out


def test_ingest_command_adds_files_and_prints_a_summary(db, tmp_path, capsys):
    (tmp_path / "one.md").write_text(BATCH)
    (tmp_path / "two.md").write_text(BREACH)
    call_command("ingest", str(tmp_path), "--domain", "gmp-new", "--category", "eu",
                 "--create-domain", "GMP New")
    out = capsys.readouterr().out
    assert "2 documents" in out and "chunks" in out and "seconds" in out
    assert Document.objects.filter(domain__slug="gmp-new", category__code="eu",
                                   status="ready").count() == 2
    call_command("ingest", str(tmp_path / "one.md"), "--domain", "gmp-new")
    assert "1 already present" in capsys.readouterr().out or Document.objects.count() == 3


def test_reindex_command_rebuilds_vectors(domain, category, capsys):
    ingest(BATCH.encode(), "batch.md", domain=domain, category=category)
    call_command("reindex")
    assert "full-text vectors rebuilt" in capsys.readouterr().out
    assert retrieval.search("batch records", domain=domain, category=category)


def test_reindex_reingest_gives_old_chunks_their_heading_paths(domain, category, capsys):
    document = ingest(BATCH.encode(), "batch.md", domain=domain, category=category,
                      title="Batch records")
    Chunk.objects.filter(document=document).update(heading_path="", embedding=None)
    call_command("reindex", "--reingest")
    assert "documents ingested again: 1 ready, 0 left as they were" in capsys.readouterr().out
    chunk = Document.objects.get(pk=document.pk).chunks.get()
    assert chunk.heading_path == "Batch records › Retention"
    assert chunk.embedding  # the default minilm backend embeds at ingestion


def test_reindex_reingest_keeps_a_document_whose_file_is_gone(domain, category, capsys):
    document = ingest(BATCH.encode(), "batch.md", domain=domain, category=category)
    chunks = set(document.chunks.values_list("pk", flat=True))
    default_storage.delete(document.file.name)
    call_command("reindex", "--reingest")
    assert "0 ready, 1 left as they were" in capsys.readouterr().out
    document.refresh_from_db()
    assert document.status == Document.Status.READY
    assert set(document.chunks.values_list("pk", flat=True)) == chunks


def test_hybrid_search_with_the_local_model(domain, category, settings):
    import pytest

    pytest.importorskip("sentence_transformers", reason="needs requirements-semantic.txt")
    from knowledge import embeddings

    settings.EGRET_EMBEDDINGS = "local"
    embeddings.reset()
    try:
        batch = ingest(BATCH.encode(), "batch.md", domain=domain, category=category)
        ingest(BREACH.encode(), "breach.md", domain=domain, category=category)
        assert all(c.embedding for c in batch.chunks.all())
        # No shared word with the batch text: only the semantic ranking can find it.
        semantic = retrieval.search("How long do we archive production paperwork?",
                                    domain=domain, category=category, method="semantic")
        assert semantic[0].document == batch
        hybrid = retrieval.search("batch records retention", domain=domain, category=category)
        assert hybrid[0].document == batch and 0 < hybrid[0].score <= 1
    finally:
        embeddings.reset()
