import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.text import slugify

from knowledge.library import library_document_add
from knowledge.models import Category, Document, Domain


class Command(BaseCommand):
    help = "Add files to the public library of a domain (and category) and ingest them now."

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", help="files or directories (searched recursively)")
        parser.add_argument("--domain", required=True, help="domain slug")
        parser.add_argument("--category", help="category code within the domain")
        parser.add_argument("--title", default="", help="title (single file only)")
        parser.add_argument("--create-domain", metavar="NAME",
                            help="create the domain (and the category) with this name if missing")

    def handle(self, *args, **opts) -> None:
        domain = Domain.objects.filter(slug=opts["domain"]).first()
        if domain is None:
            if not opts["create_domain"]:
                raise CommandError(f"Domain {opts['domain']!r} not found "
                                   "(use --create-domain NAME to create it).")
            domain = Domain.objects.create(slug=slugify(opts["domain"]),
                                           name=opts["create_domain"])
        category = None
        if opts["category"]:
            category = Category.objects.filter(domain=domain, code=opts["category"]).first()
            if category is None:
                if not opts["create_domain"]:
                    raise CommandError(f"Category {opts['category']!r} not found in "
                                       f"{domain.slug}.")
                category = Category.objects.create(domain=domain, code=opts["category"],
                                                   name=opts["category"].upper())
        files = self._files(opts["paths"])
        if opts["title"] and len(files) > 1:
            raise CommandError("--title applies to a single file.")
        started = time.perf_counter()
        added = skipped = failed = chunks = 0
        for index, path in enumerate(files, 1):
            document, created = library_document_add(path, domain=domain, category=category,
                                                      title=opts["title"] or path.stem)
            if not created:
                skipped += 1
            elif document.status == Document.Status.READY:
                added += 1
                chunks += document.chunk_count
            else:
                failed += 1
                self.stderr.write(f"\n{path}: {document.error}")
            self._progress(index, len(files), path.name)
        self.stdout.write("")
        self.stdout.write(f"{added} documents, {chunks} chunks, {skipped} already present, "
                          f"{failed} failed in {time.perf_counter() - started:.1f} seconds")
        if failed:
            raise CommandError(f"{failed} file(s) could not be ingested.")

    def _files(self, paths: list[str]) -> list[Path]:
        files: list[Path] = []
        for raw in paths:
            path = Path(raw)
            if path.is_dir():
                files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
            elif path.is_file():
                files.append(path)
            else:
                raise CommandError(f"{raw}: no such file or directory.")
        return files

    def _progress(self, done: int, total: int, name: str) -> None:
        width = 30
        filled = width * done // total
        stream = self.stdout._out if hasattr(self.stdout, "_out") else sys.stdout
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {name[:40]:<40}")
        stream.flush()
