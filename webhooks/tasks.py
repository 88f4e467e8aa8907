from django_tasks import task

from webhooks import delivery


@task()
def deliver_webhooks() -> int:
    """Fan out new events and send the deliveries that are due; returns the attempts made."""
    return delivery.deliver_pending()
