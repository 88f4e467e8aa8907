"""Sessions (API.md 8): a conversation, listing, messages, rename, delete, export."""

from __future__ import annotations

import pytest

from assistant.models import ChatSession, Message
from billing.models import LedgerEntry
from tests.assistant.conftest import ask


def converse(api) -> str:
    first = ask(api).json()
    session_id = first["session_id"]
    for question in ("And what is the recovery time objective for Tier 1 functions?",
                     "How long do we keep after-action reports from continuity tests?"):
        response = ask(api, query=question, session_id=session_id)
        assert response.status_code == 200 and response.json()["session_id"] == session_id
    return session_id


def test_three_turns_make_six_messages_with_sources_on_answers(api, org):
    session_id = converse(api)
    messages = api.get(f"/v1/sessions/{session_id}/messages/").json()
    assert [m["sender"] for m in messages] == ["user", "assistant"] * 3
    assert messages[0]["content"] == "How often must we review the business impact analysis?"
    for message in messages:
        assert set(message) == {"id", "session_id", "sender", "content", "model",
                                "bedrock_model_id", "sources", "input_tokens",
                                "output_tokens", "credits_used", "context_quality",
                                "created_at"}
        assert message["session_id"] == session_id
        if message["sender"] == "assistant":
            assert message["sources"] and message["context_quality"] in ("high", "medium", "low")
            assert message["model"] == message["bedrock_model_id"] == "extractive"
            assert message["credits_used"] == 1
        else:
            assert message["context_quality"] is None and message["sources"] == []
    session = api.get(f"/v1/sessions/{session_id}/").json()
    assert session["message_count"] == 6 and session["domain_slug"] == "business-continuity"
    assert session["category_code"] == "us" and session["title"].startswith("How often")


def test_follow_up_uses_the_earlier_question(api, org):
    session_id = ask(api, query="How often must we test the business continuity plan?"
                     ).json()["session_id"]
    body = ask(api, query="And how long must the reports be kept?",
               session_id=session_id).json()
    assert body["insufficient_context"] is False
    assert any(s["title"] == "Continuity Testing" for s in body["sources"])


def test_recent_lists_latest_activity_first_with_limit(api, org):
    first = ask(api).json()["session_id"]
    second = ask(api, query="How long do we keep test plans?").json()["session_id"]
    ask(api, query="What must Tier 1 functions recover within?", session_id=first)
    recent = api.get("/v1/sessions/recent/").json()
    assert [s["session_id"] for s in recent] == [first, second]
    assert len(api.get("/v1/sessions/recent/?limit=1").json()) == 1
    for bad in ("0", "101", "x"):
        response = api.get(f"/v1/sessions/recent/?limit={bad}")
        assert response.status_code == 400 and response.json()["detail"].startswith("limit")


def test_rename_then_delete(api, org):
    session_id = ask(api).json()["session_id"]
    response = api.post(f"/v1/sessions/{session_id}/rename/", {"title": "BIA questions"},
                        format="json")
    assert response.status_code == 200 and response.json()["title"] == "BIA questions"
    for title in ("", "x" * 201):
        response = api.post(f"/v1/sessions/{session_id}/rename/", {"title": title},
                            format="json")
        assert response.status_code == 400 and response.json()["detail"].startswith("title")
    assert api.delete(f"/v1/sessions/{session_id}/").status_code == 204
    assert api.get(f"/v1/sessions/{session_id}/").status_code == 404
    assert api.get(f"/v1/sessions/{session_id}/messages/").status_code == 404
    assert not Message.objects.exists()
    assert LedgerEntry.objects.filter(kind="query_charge").count() == 1  # the ledger keeps it


def test_delete_alias_path(api, org):
    session_id = ask(api).json()["session_id"]
    assert api.delete(f"/v1/sessions/{session_id}/delete/").status_code == 204
    assert api.delete(f"/v1/sessions/{session_id}/delete/").status_code == 404
    assert not ChatSession.objects.exists()


def test_sessions_of_another_organization_are_404(api, org, make_user, make_org, jwt_client):
    session_id = ask(api).json()["session_id"]
    stranger = make_user()
    other = jwt_client(stranger, make_org(stranger, name="Other", slug="other"))
    for path in ("", "messages/", "export/"):
        response = other.get(f"/v1/sessions/{session_id}/{path}")
        assert response.status_code == 404 and response.json()["detail"] == "Session not found."
    assert other.post(f"/v1/sessions/{session_id}/rename/", {"title": "x"},
                      format="json").status_code == 404
    assert other.delete(f"/v1/sessions/{session_id}/").status_code == 404
    assert other.get("/v1/sessions/recent/").json() == []
    assert ChatSession.objects.filter(pk=session_id).exists()


def test_sessions_need_credentials(client, db):
    response = client.get("/v1/sessions/recent/")
    assert response.status_code == 401


def test_export_needs_the_plan_feature(api, org):
    session_id = ask(api).json()["session_id"]
    response = api.get(f"/v1/sessions/{session_id}/export/")
    assert response.status_code == 403
    assert response.json()["detail"] == "Your plan does not include session export."


@pytest.mark.parametrize("fmt", ["markdown", "json"])
def test_export_markdown_and_json(api, org, fmt):
    from billing.models import Plan
    org.plan = Plan.objects.get(slug="professional")
    org.save(update_fields=["plan"])
    session_id = converse(api)
    response = api.get(f"/v1/sessions/{session_id}/export/?format={fmt}")
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    if fmt == "json":
        body = response.json()
        assert body["session"]["session_id"] == session_id and len(body["messages"]) == 6
    else:
        text = response.content.decode()
        assert response["Content-Type"].startswith("text/markdown")
        assert text.startswith("# How often must we review")
        assert text.count("## Question") == 3 and text.count("## Answer") == 3
        assert "**Sources**" in text
    assert api.get(f"/v1/sessions/{session_id}/export/?format=pdf").status_code == 400
