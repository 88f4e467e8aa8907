from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from billing import services as billing_services
from billing.models import Plan
from knowledge.models import Domain
from organizations import services
from organizations.models import ApiKey, Invitation, Membership, Organization


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)
    fields = ("user", "role", "joined_at")
    readonly_fields = ("joined_at",)


class OrganizationForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = "__all__"
        help_texts = {"allowed_domains": 'JSON list of domain slugs, e.g. ["business-continuity"]; '
                                         "empty list = every domain."}

    def clean_allowed_domains(self) -> list[str]:
        value = self.cleaned_data.get("allowed_domains") or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise forms.ValidationError("Enter a JSON list of domain slugs.")
        value = list(dict.fromkeys(value))
        unknown = set(value) - set(Domain.objects.filter(slug__in=value).values_list("slug", flat=True))
        if unknown:
            raise forms.ValidationError(f"Unknown domain(s): {', '.join(sorted(unknown))}.")
        return value


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


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    form = OrganizationForm
    action_form = OrganizationActionForm
    actions = ["grant_credits", "change_plan"]
    list_display = ("slug", "name", "plan", "is_active", "created_at")
    list_filter = ("plan", "is_active")
    list_select_related = ("plan",)
    search_fields = ("slug", "name", "memberships__user__email")
    readonly_fields = ("id", "plan", "created_at", "updated_at")
    inlines = [MembershipInline]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = OrganizationAddForm
            kwargs["fields"] = ("name", "slug", "owner_email", "plan_choice")
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Organization | None = None):
        if obj is None:
            return ("name", "slug", "owner_email", "plan_choice")
        return super().get_fields(request, obj)

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

    list_display = ("key_prefix", "name", "organization", "is_active_display", "created_at",
                    "last_used_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at",)
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

    @admin.display(boolean=True, description="active")
    def is_active_display(self, obj: ApiKey) -> bool:
        return obj.is_active

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
