from __future__ import annotations

import pytest

from knowledge.models import Domain


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """These tests create many users; the hasher's cost is not what they test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def domains(db):
    return {
        slug: Domain.objects.create(slug=slug, name=slug.upper())
        for slug in ("bcm", "aml", "privacy")
    }


@pytest.fixture
def admin_user(make_user, org, add_member):
    user = make_user("admin@example.com", name="Ada Admin")
    add_member(org, user, "admin")
    return user


@pytest.fixture
def member_user(make_user, org, add_member):
    user = make_user("member@example.com", name="Max Member")
    add_member(org, user, "member")
    return user
