from django_tasks import task

from organizations import services


@task()
def send_invitation_email(invitation_id: str) -> None:
    """An invitation's email, its token derived now: the queue holds the invitation's id, never
    the token."""
    services.invitation_email_send(invitation_id)
