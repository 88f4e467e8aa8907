"""API.md 2.2: only a SHA-256 digest of an API key is stored; the raw key never is."""

from __future__ import annotations

import json

from django.apps import apps
from django.db import models

from core import keyformat
from organizations.models import ApiKey

TEXT_FIELDS = (models.CharField, models.TextField, models.JSONField)


def stored_text():
    """Yields (table.column, text) for every char/text/JSON value of every model table."""
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or not meta.managed:
            continue
        fields = [f for f in meta.concrete_fields if isinstance(f, TEXT_FIELDS)]
        if not fields:
            continue
        names = [f.attname for f in fields]
        for row in model._base_manager.values_list(*names):
            for field, value in zip(fields, row):
                if value is None:
                    continue
                text = value if isinstance(value, str) else json.dumps(value)
                yield f"{meta.db_table}.{field.column}", text


def columns_containing(needle: str) -> set[str]:
    return {where for where, text in stored_text() if needle in text}


def test_raw_api_keys_are_never_stored(owner, org, jwt_client, key_client):
    api = jwt_client(owner, org)

    created = api.post("/v1/billings/api-keys/", {"name": "first"}, format="json")
    assert created.status_code == 201
    first_raw = created.json()["key"]
    key_id = created.json()["id"]
    assert key_client(first_raw).get("/auth/me/").status_code == 200

    rotated = api.post(f"/v1/billings/api-keys/{key_id}/rotate/")
    assert rotated.status_code == 200
    rotated_raw = rotated.json()["key"]
    assert key_client(rotated_raw).get("/auth/me/").status_code == 200

    # Starter allows one active key: revoke, then create a second through the API.
    assert api.delete(f"/v1/billings/api-keys/{key_id}/").status_code == 204
    second = api.post("/v1/billings/api-keys/", {"name": "second"}, format="json")
    assert second.status_code == 201
    second_raw = second.json()["key"]
    assert key_client(second_raw).get("/auth/me/").status_code == 200
    assert api.get("/v1/billings/api-keys/").status_code == 200

    raws = [first_raw, rotated_raw, second_raw]
    assert len(set(raws)) == 3
    for raw in raws:
        assert keyformat.is_well_formed(raw)
        assert columns_containing(raw) == set()
        assert columns_containing(raw[len("egret_"):]) == set()  # the 40-character body

    # The scan does read the key table: the display prefix and the digest are there.
    assert columns_containing(second_raw[:20]) == {"organizations_apikey.key_prefix"}
    assert set(ApiKey.objects.values_list("digest", flat=True)) == {
        keyformat.digest(rotated_raw), keyformat.digest(second_raw)
    }


def test_key_list_and_me_never_show_the_raw_key(owner, org, jwt_client, key_client):
    api = jwt_client(owner, org)
    raw = api.post("/v1/billings/api-keys/", {"name": "ci"}, format="json").json()["key"]

    listing = api.get("/v1/billings/api-keys/")
    me = key_client(raw).get("/auth/me/")

    assert listing.status_code == 200 and me.status_code == 200
    for response in (listing, me):
        assert raw not in response.content.decode()
        assert raw[len("egret_"):] not in response.content.decode()
    assert listing.json()[0]["key_prefix"] == raw[:20]
    assert "key" not in listing.json()[0]
