from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import Count, F, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from assistant.models import ChatSession
from billing import charts, selectors as billing_selectors
from billing import services as billing_services
from billing.admin import ledger_actor
from billing.models import LedgerEntry, Plan
from core.display import short_text, utc_time
from knowledge.models import Document, Domain
from organizations import services
from organizations.models import ApiKey, Invitation, Membership, Organization, Role

LATEST_LEDGER_ENTRIES = 10


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)
    fields = ("user", "role", "joined_at")
    readonly_fields = ("joined_at",)


class OrganizationForm(forms.ModelForm):
    """`allowed_domains` is stored as a list of domain slugs; operators tick domains."""

    allowed_domains = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Domains this organization may query; none ticked = every domain.")

    class Meta:
        model = Organization
        fields = "__all__"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["allowed_domains"].choices = [
            (domain.slug, f"{domain.name} ({domain.slug})")
            for domain in Domain.objects.order_by("name")]

    def clean_allowed_domains(self) -> list[str]:
        return list(dict.fromkeys(self.cleaned_data.get("allowed_domains") or []))


class OrganizationAddForm(forms.ModelForm):
    """A new organization goes through `organization_create_by_operator`, like `org_create`:
    an owner (created with an unusable password when the email is new, and emailed a
    set-password link), a plan and the first period's credits."""

    owner_email = forms.EmailField(help_text="The owner; a new email creates the user, who "
                                             "gets an email with a link to set a password.")
    plan_choice = forms.ModelChoiceField(queryset=Plan.objects.all(), to_field_name="slug",
                                         label="Plan")

    class Meta:
        model = Organization
        fields = ("name", "slug")

    def clean_slug(self) -> str:
        slug = self.cleaned_data.get("slug", "")
        if Organization.objects.filter(slug=slug).exists():
            raise forms.ValidationError("An organization with this slug already exists.")
        return slug


class OrganizationActionForm(ActionForm):
    amount = forms.IntegerField(required=False, help_text="credits (negative = adjustment)")
    memo = forms.CharField(required=False, max_length=500)
    plan = forms.ModelChoiceField(queryset=Plan.objects.all(), required=False, to_field_name="slug")


class ActivityFilter(admin.SimpleListFilter):
    title = "last question"
    parameter_name = "activity"

    def lookups(self, request, model_admin):
        return [("7", "in the last 7 days"), ("30", "in the last 30 days"),
                ("idle", "none in 30 days"), ("never", "never")]

    def queryset(self, request, queryset):
        value, since = self.value(), timezone.now() - timedelta(days=30)
        if value in ("7", "30"):
            return queryset.filter(
                last_activity__gte=timezone.now() - timedelta(days=int(value)))
        if value == "idle":
            return queryset.exclude(last_activity__gte=since)
        if value == "never":
            return queryset.filter(last_activity__isnull=True)
        return queryset


class CreditsFilter(admin.SimpleListFilter):
    title = "credits"
    parameter_name = "credits"

    def lookups(self, request, model_admin):
        return [("exhausted", "exhausted (0 left)"), ("low", "under 10 % of the allowance")]

    def queryset(self, request, queryset):
        if self.value() == "exhausted":
            return queryset.filter(balance__lte=0)
        if self.value() == "low":
            return queryset.filter(balance__lt=F("plan__monthly_credits") / 10)
        return queryset


def _count_of(model, **filters) -> Coalesce:
    """A correlated COUNT per organization (a JOIN per count would multiply the rows)."""
    counted = (model.objects.filter(organization=OuterRef("pk"), **filters)
               .order_by().values("organization").annotate(n=Count("pk")).values("n"))
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    """The list shows the business at a glance (plan, balance, owner, members, documents,
    last question), each column a subquery of the one list query; an organization's page
    shows its period's figures, a usage chart and its latest ledger entries."""

    form = OrganizationForm
    action_form = OrganizationActionForm
    actions = ["grant_credits", "change_plan"]
    list_display = ("slug", "name", "plan", "balance_display", "owner_display",
                    "members_display", "documents_display", "last_activity_display",
                    "is_active")
    list_filter = ("plan", "is_active", CreditsFilter, ActivityFilter)
    list_select_related = ("plan", "credit_account")
    search_fields = ("slug", "name", "memberships__user__email")
    readonly_fields = ("id", "plan", "created_at", "updated_at", "credits_overview",
                       "usage_chart", "latest_ledger")
    fieldsets = (
        (None, {"fields": ("id", "slug", "name", "plan", "is_active", "allowed_domains")}),
        ("Credits", {"fields": ("credits_overview", "usage_chart", "latest_ledger")}),
        ("Limits (empty: the plan's)", {"fields": (
            "max_api_keys_override", "max_members_override", "max_documents_override",
            "max_storage_gb_override")}),
        ("Dates", {"fields": ("created_at", "updated_at")}),
    )
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Organization]:
        owners = (Membership.objects.filter(organization=OuterRef("pk"), role=Role.OWNER)
                  .order_by("joined_at").values("user__email")[:1])
        last_question = (ChatSession.objects.filter(organization=OuterRef("pk"))
                         .order_by("-last_activity_at").values("last_activity_at")[:1])
        return super().get_queryset(request).select_related(
            "plan", "credit_account", "subscription").annotate(
            balance=F("credit_account__balance"),
            owner_email=Subquery(owners),
            member_count=_count_of(Membership),
            document_count=_count_of(Document),
            last_activity=Subquery(last_question))

    @admin.display(description="balance", ordering="balance")
    def balance_display(self, obj: Organization) -> int | None:
        return obj.balance

    @admin.display(description="owner", ordering="owner_email")
    def owner_display(self, obj: Organization) -> str:
        return obj.owner_email or "—"

    @admin.display(description="members", ordering="member_count")
    def members_display(self, obj: Organization) -> int:
        return obj.member_count

    @admin.display(description="documents", ordering="document_count")
    def documents_display(self, obj: Organization) -> int:
        return obj.document_count

    @admin.display(description="last question (UTC)", ordering="last_activity")
    def last_activity_display(self, obj: Organization) -> str:
        return utc_time(obj.last_activity)

    @admin.display(description="this period")
    def credits_overview(self, obj: Organization) -> str:
        if obj.pk is None:
            return "—"
        quota = billing_selectors.current_quota(obj)
        rows = [("Monthly allowance", quota["monthly_credits"]),
                ("Granted", quota["credits_granted"]), ("Used", quota["credits_used"]),
                ("Reserved (answers in flight)", quota["credits_reserved"]),
                ("Remaining (balance)", quota["credits_remaining"])]
        return format_html(
            '<table class="credits-overview"><caption>{} – {} (UTC)</caption>{}</table>',
            utc_time(quota["period_start"]), utc_time(quota["period_end"]),
            format_html_join("", '<tr><th scope="row">{}</th><td>{}</td></tr>', rows))

    @admin.display(description="credits per day")
    def usage_chart(self, obj: Organization) -> str:
        return charts.usage_chart(obj) if obj.pk else "—"

    @admin.display(description="latest ledger entries")
    def latest_ledger(self, obj: Organization) -> str:
        if obj.pk is None:
            return "—"
        entries = (LedgerEntry.objects.filter(organization_id=obj.pk)
                   .select_related("actor_user", "actor_api_key")
                   .order_by("-created_at", "-id")[:LATEST_LEDGER_ENTRIES])
        rows = [(utc_time(e.created_at, seconds=True), e.kind, f"{e.amount:+d}",
                 e.balance_after, ledger_actor(e), short_text(e.memo, 60)) for e in entries]
        link = reverse("admin:billing_ledgerentry_changelist") + \
            f"?organization__id__exact={obj.pk}"
        return format_html(
            '<table class="latest-ledger"><thead><tr><th>time (UTC)</th><th>kind</th>'
            "<th>amount</th><th>balance after</th><th>actor</th><th>memo</th></tr></thead>"
            '<tbody>{}</tbody></table><p><a class="all-ledger" href="{}">All ledger entries '
            "of {} →</a></p>",
            format_html_join("", "<tr>" + "<td>{}</td>" * 6 + "</tr>", rows), link, obj.slug)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = OrganizationAddForm
            kwargs["fields"] = ("name", "slug", "owner_email", "plan_choice")
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Organization | None = None):
        if obj is None:
            return ("name", "slug", "owner_email", "plan_choice")
        return super().get_fields(request, obj)

    def get_fieldsets(self, request: HttpRequest, obj: Organization | None = None):
        if obj is None:
            return [(None, {"fields": ("name", "slug", "owner_email", "plan_choice")})]
        return self.fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Organization | None = None):
        return () if obj is None else self.readonly_fields

    def get_inlines(self, request: HttpRequest, obj: Organization | None):
        return [] if obj is None else self.inlines

    def save_model(self, request: HttpRequest, obj: Organization, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created, _new_owner = services.organization_create_by_operator(
            name=obj.name, owner_email=form.cleaned_data["owner_email"], slug=obj.slug,
            plan_slug=form.cleaned_data["plan_choice"].slug)
        obj.pk, obj.plan, obj._state.adding = created.pk, created.plan, False
        obj.created_at, obj.updated_at = created.created_at, created.updated_at

    def save_related(self, request, form, formsets, change) -> None:
        if change:
            super().save_related(request, form, formsets, change)

    @admin.action(description="Grant credits (fill in amount and memo)")
    def grant_credits(self, request: HttpRequest, queryset: QuerySet[Organization]) -> None:
        amount = request.POST.get("amount", "").strip()
        if not amount.lstrip("-").isdigit() or int(amount) == 0:
            self.message_user(request, "Enter a non-zero whole number of credits.", messages.ERROR)
            return
        credits = int(amount)
        kind = billing_services.Kind.TOP_UP if credits > 0 else billing_services.Kind.ADJUSTMENT
        memo = request.POST.get("memo", "").strip() or "operator grant (admin)"
        for organization in queryset.select_related("plan"):
            try:
                entry = billing_services.credits_grant(organization, credits, kind=kind, memo=memo,
                                                       actor_user=request.user)
            except billing_services.NegativeBalance as exc:
                self.message_user(request, f"{organization.slug}: {exc}", messages.ERROR)
                continue
            self.message_user(request, f"{organization.slug}: {credits:+d} credits, balance "
                                       f"{entry.balance_after}.", messages.SUCCESS)

    @admin.action(description="Change plan (choose the plan)")
    def change_plan(self, request: HttpRequest, queryset: QuerySet[Organization]) -> None:
        plan = Plan.objects.filter(slug=request.POST.get("plan", "")).first()
        if plan is None:
            self.message_user(request, "Choose a plan.", messages.ERROR)
            return
        for organization in queryset.select_related("plan"):
            billing_services.plan_change(organization, plan, actor_user=request.user)
            self.message_user(request, f"{organization.slug} is now on {plan.slug}.",
                              messages.SUCCESS)


class ApiKeyAddForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ("organization", "name", "expires_at", "created_by")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """The digest is never shown; a raw key appears once, on the page that answers its
    creation or rotation (not in a message: Django's messages travel in a signed, readable
    cookie that proxies log)."""

    list_display = ("key_prefix", "name", "organization", "state_display", "created_display",
                    "last_used_display")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    list_select_related = ("organization", "created_by")
    search_fields = ("key_prefix", "name", "organization__slug")
    autocomplete_fields = ("organization", "created_by")
    actions = ["revoke_keys", "rotate_keys"]
    fields = ("id", "organization", "name", "key_prefix", "created_by", "created_at",
              "last_used_at", "expires_at", "revoked_at")

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None):
        if obj is None:
            return ()
        return ("id", "organization", "key_prefix", "created_by", "created_at", "last_used_at",
                "revoked_at")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
            kwargs["fields"] = ApiKeyAddForm.Meta.fields
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None):
        return ApiKeyAddForm.Meta.fields if obj is None else self.fields

    @admin.display(description="state")
    def state_display(self, obj: ApiKey) -> str:
        if obj.revoked_at is not None:
            return f"revoked {utc_time(obj.revoked_at)}"
        if obj.is_expired():
            return f"expired {utc_time(obj.expires_at)}"
        if obj.expires_at is not None:
            return f"active, expires {utc_time(obj.expires_at)}"
        return "active"

    @admin.display(description="created (UTC)", ordering="created_at")
    def created_display(self, obj: ApiKey) -> str:
        return utc_time(obj.created_at)

    @admin.display(description="last used (UTC)", ordering="last_used_at")
    def last_used_display(self, obj: ApiKey) -> str:
        return utc_time(obj.last_used_at)

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key, raw = services.api_key_create(
            obj.organization, name=obj.name, created_by=obj.created_by or request.user,
            expires_at=obj.expires_at, enforce_plan=False,
        )
        obj.pk, obj.key_prefix, obj.created_at = key.pk, key.key_prefix, key.created_at
        obj._state.adding = False
        request._egret_new_api_key = (key, raw)  # for response_add; this request's memory only

    def response_add(self, request: HttpRequest, obj: ApiKey, post_url_continue=None
                     ) -> HttpResponse:
        return self._show_secrets(request, [request._egret_new_api_key], "API key created")

    def _show_secrets(self, request: HttpRequest, keys: list[tuple[ApiKey, str]],
                      title: str) -> HttpResponse:
        context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                   "title": title, "keys": keys}
        response = TemplateResponse(request, "admin/organizations/apikey/secret.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: the ledger refers to keys

    @admin.action(description="Revoke selected API keys (permanent)")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset:
            services.api_key_revoke(key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)

    @admin.action(description="Rotate selected API keys (new secret, old one stops working)")
    def rotate_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]
                    ) -> HttpResponse | None:
        rotated = [(key, services.api_key_rotate(key))
                   for key in queryset.filter(revoked_at__isnull=True).select_related(
                       "organization")]
        if not rotated:
            self.message_user(request, "Revoked keys cannot be rotated.", messages.ERROR)
            return None
        return self._show_secrets(request, rotated, "API keys rotated")


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Read-only: invitations are sent through the API; the token's digest and nonce are never
    shown."""

    list_display = ("email", "organization", "role", "created_at", "expires_at", "accepted_at",
                    "revoked_at")
    list_filter = ("role",)
    list_select_related = ("organization",)
    search_fields = ("email", "organization__slug")
    fields = ("id", "organization", "email", "role", "invited_by", "created_at", "expires_at",
              "accepted_at", "revoked_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
