"""Admin: runs with their steps, read-only (runs and steps are written by runs/services.py only)."""

from django.contrib import admin

from runs.models import Run, Step


class StepInline(admin.TabularInline):
    model = Step
    fields = ("seq", "nit", "phase", "fun", "nfev", "njev", "elapsed")
    readonly_fields = fields
    ordering = ("seq",)
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def get_queryset(self, request):
        # A run may have 100k steps: the change page shows the first 200 (the rest via Steps).
        qs = super().get_queryset(request).defer("data")
        ids = list(qs.order_by("seq").values_list("pk", flat=True)[:200])
        return qs.filter(pk__in=ids)


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "method", "problem", "status", "n_steps", "best_fun", "created", "finished")
    list_filter = ("status", "method", "problem")
    search_fields = ("owner__username", "label", "problem")
    date_hierarchy = "created"
    list_select_related = ("owner",)
    readonly_fields = ("owner", "method", "problem", "spec", "status", "created", "started", "finished",
                       "heartbeat", "n_steps", "nit", "nfev", "elapsed", "best_fun", "result", "error")
    fields = ("label", *readonly_fields)
    inlines = [StepInline]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("checkpoint")

    def has_add_permission(self, request):
        return False


@admin.register(Step)
class StepAdmin(admin.ModelAdmin):
    list_display = ("run", "seq", "nit", "phase", "fun", "nfev", "njev", "elapsed")
    list_filter = ("phase",)
    search_fields = ("=run__id",)
    list_select_related = ("run",)
    readonly_fields = ("run", "seq", "nit", "phase", "fun", "nfev", "njev", "elapsed", "data")
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
