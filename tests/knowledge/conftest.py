import pytest

from knowledge.models import Category, Domain


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def domain(db):
    return Domain.objects.create(slug="biotech", name="Biotech")


@pytest.fixture
def category(domain):
    return Category.objects.create(domain=domain, code="gmp", name="GMP")
