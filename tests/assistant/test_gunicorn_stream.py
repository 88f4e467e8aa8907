"""A streamed answer goes through a real gunicorn gthread worker line by line: the `sources`
line reaches the client before generation has finished (API.md 7)."""

from __future__ import annotations

import http.client
import json
import time

import pytest

from tests.servers import ServedApp

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

DELAY = 0.25  # seconds the extractive model waits between deltas (set on the model row)


@pytest.fixture
def served(tmp_path):
    with ServedApp(tmp_path, setup_code=(
        "from assistant.models import AIModel; "
        f"AIModel.objects.filter(pk='extractive').update(options={{'stream_delay': {DELAY}}})"
    )) as app:
        yield app


def test_sources_line_arrives_before_generation_ends(served):
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=60)
    body = json.dumps({"query": "How often must the business impact analysis be reviewed?",
                       "domain": "business-continuity", "category": "us",
                       "mode": "compliance", "stream": True})
    started = time.monotonic()
    connection.request("POST", "/v1/query/", body=body, headers={
        "Authorization": f"Bearer {served.api_key}", "Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "application/x-ndjson"
    arrivals = []
    while True:
        line = response.readline()
        if not line:
            break
        arrivals.append((time.monotonic() - started, json.loads(line)))
    types = [event["type"] for _, event in arrivals]
    assert types[0] == "sources" and types[-1] == "done" and "text_delta" in types[1:-1]
    deltas = sum(1 for t in types if t == "text_delta")
    first_at, done_at = arrivals[0][0], arrivals[-1][0]
    # Generation sleeps DELAY between deltas: the sources line must come that much earlier.
    assert done_at - first_at >= DELAY * (deltas - 1) * 0.8, arrivals
    assert arrivals[-1][1]["full_text"] == "".join(
        e["text"] for _, e in arrivals if e["type"] == "text_delta")
