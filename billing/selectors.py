from django.db.models import QuerySet

from billing.models import Plan


def plans_public() -> QuerySet[Plan]:
    return Plan.objects.order_by("sort_order", "slug")
