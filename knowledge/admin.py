from django import forms
from django.contrib import admin, messages

from core.display import file_size, short_text, utc_time
from knowledge import parsing, services
from knowledge.models import Category, Document, Domain


class CategoryInline(admin.TabularInline):
    model = Category
    extra = 0


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "is_active")
    search_fields = ("slug", "name")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [CategoryInline]


class LibraryDocumentForm(forms.ModelForm):
    """Adding a library document: a file, its domain and category. Type screening runs here
    so a refused file is a form error, not a failed document."""

    upload = forms.FileField(required=False, help_text="PDF, DOCX, Markdown, plain text or HTML")

    class Meta:
        model = Document
        fields = ("title", "domain", "category")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["title"].required = False
        self.fields["domain"].required = True
        if not self.instance._state.adding:  # the file of a document is not replaced here
            del self.fields["upload"]
        else:
            self.fields["upload"].required = True

    def clean(self):
        cleaned = super().clean()
        category, domain = cleaned.get("category"), cleaned.get("domain")
        if category and domain and category.domain_id != domain.pk:
            self.add_error("category", "This category belongs to another domain.")
        upload = cleaned.get("upload")
        if upload is not None:
            data = upload.read()
            try:
                parsing.screen(data, upload.name)
            except parsing.ParseError as exc:
                self.add_error("upload", str(exc))
            cleaned["data"] = data
        return cleaned


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    """Library documents (organization empty) and, read-only, organizations' documents."""

    form = LibraryDocumentForm
    list_display = ("title_display", "organization", "domain", "category_display", "status",
                    "chunk_count", "size_display", "uploaded_display")
    list_filter = ("status", "domain", ("organization", admin.EmptyFieldListFilter))
    search_fields = ("title", "filename", "sha256", "organization__slug")
    readonly_fields = ("organization", "filename", "content_type", "size_bytes", "sha256",
                       "status", "error", "page_count", "chunk_count", "uploaded_by",
                       "uploaded_by_api_key", "created_at", "updated_at")
    actions = ["reingest"]
    list_select_related = ("organization", "domain", "category")

    @admin.display(description="title", ordering="title")
    def title_display(self, obj: Document) -> str:
        return short_text(obj.title, 48)

    @admin.display(description="category", ordering="category__code")
    def category_display(self, obj: Document) -> str:
        return obj.category.code if obj.category_id else "—"

    @admin.display(description="size", ordering="size_bytes")
    def size_display(self, obj: Document) -> str:
        return file_size(obj.size_bytes)

    @admin.display(description="uploaded (UTC)", ordering="created_at")
    def uploaded_display(self, obj: Document) -> str:
        return utc_time(obj.created_at)

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return [f for f in fields if f != "upload"] if obj is not None else fields

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["title", "domain", "category"])
            return
        upload = form.cleaned_data["upload"]
        document = services.document_create(
            data=form.cleaned_data["data"], filename=upload.name,
            title=form.cleaned_data.get("title") or "", domain=form.cleaned_data["domain"],
            category=form.cleaned_data.get("category"), uploaded_by=request.user)
        services.ingestion_enqueue(document)
        obj.pk = document.pk
        obj._state.adding = False

    @admin.action(description="Re-ingest (parse and index again)")
    def reingest(self, request, queryset):
        count = 0
        for document in queryset:
            services.ingestion_enqueue(document)
            count += 1
        self.message_user(request, f"{count} document(s) queued for ingestion.",
                          messages.SUCCESS)
