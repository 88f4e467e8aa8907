"""The README's first-answer walkthrough works as written: its shell block is read from
README.md and run by bash, with the real curl, against a served demo (migrate, `egret_demo`
with the demo library, gunicorn), exactly as a newcomer would after `./scripts/serve.sh`.
Only the two `export` lines that the reader fills in (the URL and the printed demo key) are
replaced by the served instance's. Every curl carries the status it answers (`# → NNN`);
curl reports each status on stderr, and they must come in that order."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.servers import ROOT
from tests.system.support import serving

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None,
                       reason="needs curl and bash"),
]

SECTION = "### Your first answer (curl)"
READER_FILLS = re.compile(r"^export (BASE|EGRET_KEY)=")
EXPECTED = re.compile(r"#\s*→\s*(\d{3})\s*$")
# curl writes each response's status to stderr, so pipes and $(...) see only the body.
PRELUDE = """set -euo pipefail
curl() { command curl -w '%{stderr}STATUS %{http_code}\\n' "$@"; }
"""


def walkthrough() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split(SECTION, 1)[1]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)


def commands(block: str) -> list[str]:
    """Logical lines: backslash continuations joined, comments and blanks dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def expected_statuses(lines: list[str]) -> list[int]:
    statuses = []
    for line in lines:
        if re.search(r"(^|[\s(|;])curl\s", line):
            found = EXPECTED.search(line)
            assert found, f"a curl in the README walkthrough says no status: {line}"
            statuses.append(int(found.group(1)))
    return statuses


def test_the_walkthrough_is_parsed_as_expected():
    lines = commands(walkthrough())
    assert sum(bool(READER_FILLS.match(line)) for line in lines) == 2
    statuses = expected_statuses(lines)
    assert statuses == [200, 200, 200, 200, 200, 202, 200, 200, 200, 200, 401]
    paths = " ".join(lines)
    for needed in ("/v1/query/", '"stream": true', '"session_id"', "/v1/documents/",
                   '"knowledge_scope": "private"', "/v1/billings/subscription/",
                   "/v1/billings/ledger/"):
        assert needed in paths


@pytest.fixture(scope="module")
def served(server_db, tmp_path_factory):
    with serving(server_db, tmp_path_factory.mktemp("readme")) as app:
        yield app


def test_every_curl_of_the_walkthrough_answers_its_documented_status(served, tmp_path):
    lines = commands(walkthrough())
    script = PRELUDE + "\n".join(line for line in lines if not READER_FILLS.match(line))
    result = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "BASE": served.url, "EGRET_KEY": served.api_key})
    statuses = [int(code) for code in re.findall(r"^STATUS (\d{3})$", result.stderr, re.M)]
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:],
                                    served.logs())
    assert statuses == expected_statuses(lines), (result.stdout[-5000:], served.logs())
    # What the newcomer reads: a grounded, cited first answer, a stream ending in `done`, an
    # answer from the uploaded document, and the charges in the ledger.
    out = result.stdout
    assert '"insufficient_context": false' in out and "[1]" in out
    assert '{"type": "sources"' in out and '{"type": "done"' in out
    assert "4 hours" in out and "Remote work policy" in out
    assert '"kind": "query_charge"' in out and '"credits_remaining"' in out
    assert '{"detail":"Authentication credentials were not provided."}' in out
