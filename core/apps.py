from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Accounts and platform"

    def ready(self) -> None:
        # Registers the OpenAPI extensions (security schemes, SimpleJWT views) with
        # drf-spectacular before any schema is generated.
        from core import schema  # noqa: F401
