"""GET /v1/models/ (API.md 6) and the built-in default model."""

from assistant.models import AIModel


def test_builtin_extractive_model_is_the_default(db):
    model = AIModel.objects.get(pk="extractive")
    assert model.is_default and model.provider == "extractive" and model.credits_per_query == 1


def test_models_say_which_the_plan_allows(org, owner, jwt_client):
    AIModel.objects.create(id="claude-premium", name="Claude", provider="anthropic",
                           provider_model="claude-sonnet-4-5", tier="premium",
                           credits_per_query=5)
    AIModel.objects.create(id="retired", name="Old", provider="openai", is_active=False)
    body = jwt_client(owner, org).get("/v1/models/").json()
    assert body == [
        {"id": "extractive", "name": "Egret Extractive", "provider": "extractive",
         "tier": "standard", "credits_per_query": 1, "is_default": True, "available": True},
        {"id": "claude-premium", "name": "Claude", "provider": "anthropic", "tier": "premium",
         "credits_per_query": 5, "is_default": False, "available": False},
    ]


def test_models_need_credentials(client, db):
    assert client.get("/v1/models/").status_code == 401
