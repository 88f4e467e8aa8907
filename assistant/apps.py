from django.apps import AppConfig


class AssistantConfig(AppConfig):
    name = "assistant"

    def ready(self) -> None:
        from assistant.models import AIModel
        from core import lookups
        from knowledge.models import Category, Domain

        lookups.watch(AIModel, Domain, Category)
