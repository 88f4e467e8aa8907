from django.contrib import admin

from knowledge.models import Category, Domain


class CategoryInline(admin.TabularInline):
    model = Category
    extra = 0


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "is_active")
    search_fields = ("slug", "name")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [CategoryInline]
