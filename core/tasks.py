from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django_tasks import task


@task()
def send_email(to: str, subject: str, text: str, html: str) -> None:
    """Sends one rendered email (plain text with an HTML alternative) through Django's email
    backend; in the background with the database task backend, so a slow or failing mail
    server never holds a request (nor tells by its timing whether an account exists)."""
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [to])
    message.attach_alternative(html, "text/html")
    message.send()
