from django_tasks import task

from core import services


@task()
def send_account_email(user_id: str, kind: str, organization: str = "") -> None:
    """A password-reset or set-password email (`kind`), its one-time link made now: the queue
    holds the user's id, never the link."""
    services.account_email_send(user_id, kind, organization)
