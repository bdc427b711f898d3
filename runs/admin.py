"""Admin: runs with their steps and studies, read-only (runs and steps are written by runs/services.py only),
and API tokens, to see and revoke.

A run deleted here, alone or as a selection, is stopped first, as anywhere else: its worker
writes the stopped result and its sockets hear "finished" before the run goes.
"""

from django.contrib import admin
from django.contrib.admin.utils import unquote

from runs import services, studies, tokens
from runs.models import ApiToken, Run, Step, Study

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
                       "heartbeat", "n_steps", "nit", "nfev", "elapsed", "best_fun", "result", "error", "study")
    fields = ("label", *readonly_fields)
    inlines = [StepInline]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("checkpoint")

    def has_add_permission(self, request):
        return False

    def delete_view(self, request, object_id, extra_context=None):
        # The admin deletes inside one transaction: the run is stopped before it begins.
        if request.method == "POST":
            run = self.get_object(request, unquote(object_id))
            if run is not None and self.has_delete_permission(request, run):
                services.stop_for_delete(run)
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request, obj):
        services.delete_run(run=obj)

    def delete_queryset(self, request, queryset):
        # The "delete selected" action, which runs outside a transaction.
        for run in queryset:
            services.delete_run(run=run)


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


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "label", "problem", "created")
    search_fields = ("owner__username", "label", "problem")
    list_select_related = ("owner",)
    readonly_fields = ("owner", "problem", "spec", "created")
    fields = ("label", *readonly_fields)

    def has_add_permission(self, request):
        return False

    def delete_view(self, request, object_id, extra_context=None):
        # As for a run: its active runs are stopped before the admin's transaction begins.
        if request.method == "POST":
            study = self.get_object(request, unquote(object_id))
            if study is not None and self.has_delete_permission(request, study):
                for run in study.runs.filter(status__in=Run.ACTIVE):
                    services.stop_for_delete(run)
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request, obj):
        studies.delete_study(study=obj)

    def delete_queryset(self, request, queryset):
        for study in queryset:
            studies.delete_study(study=study)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Seen and revoked here, never made (the text would have to be shown) nor edited."""

    list_display = ("name", "owner", "prefix", "created", "last_used", "revoked")
    list_filter = (("revoked", admin.EmptyFieldListFilter),)
    search_fields = ("owner__username", "name", "prefix")
    list_select_related = ("owner",)
    readonly_fields = ("owner", "name", "prefix", "created", "last_used", "revoked")
    fields = readonly_fields
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token in queryset.filter(revoked__isnull=True):
            tokens.revoke(token)

    def delete_model(self, request, obj):
        tokens.revoke(obj)  # its sockets hear it before the row goes
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for token in queryset:
            self.delete_model(request, token)
