"""Parses the OpenAPI document's own response examples (and their null variants) with the
models openapi-python-client and datamodel-code-generator generated from it; run by
scripts/check-clients.sh from its work directory."""

from __future__ import annotations

import json
import sys
from pathlib import Path

work = Path(sys.argv[1])
document = json.loads((work / "schema.json").read_text())
sys.path.insert(0, str(work))

import models_datamodel as pydantic_models  # noqa: E402
from egret_client.api.documents import documents_download  # noqa: E402
from egret_client.api.query import query_create  # noqa: E402
from egret_client.models import DoneEvent, LedgerEntry, Me, QueryAnswer  # noqa: E402
from egret_client.types import File  # noqa: E402


def example(path: str, method: str, index: int = 0) -> dict:
    media = document["paths"][path][method]["responses"]["200"]["content"]["application/json"]
    return list(media["examples"].values())[index]["value"]


page = example("/v1/billings/ledger/", "get")
entry = page["results"][0]
for variant in (entry, {**entry, "actor": None, "reservation_id": None}):
    LedgerEntry.from_dict(variant)
    pydantic_models.LedgerEntry.model_validate(variant)
pydantic_models.PaginatedLedgerEntryList.model_validate(page)
for index in (0, 1):  # a person (api_key null), a key (user null)
    Me.from_dict(example("/auth/me/", "get", index))
    pydantic_models.Me.model_validate(example("/auth/me/", "get", index))
answer = example("/v1/query/", "post")
assert QueryAnswer.from_dict(answer).retrieval_ms == answer["retrieval_ms"]
done = document["paths"]["/v1/query/"]["post"]["x-egret-stream"]["examples"]["done"]["value"]
assert DoneEvent.from_dict(done).retrieval_ms == done["retrieval_latency_ms"]
pydantic_models.QueryRequest(query="q", domain="privacy", category="eu", mode="compliance")

# The generated parsers: the query's 200 is the typed answer, the download's 200 is bytes.
source = Path(query_create.__file__).read_text()
assert "QueryAnswer.from_dict(response.json())" in source
source = Path(documents_download.__file__).read_text()
assert "File(payload=BytesIO(response.content))" in source and File
print("python clients: generated models parse the documented examples")
