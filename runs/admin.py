"""Admin: runs with their steps, read-only (runs and steps are written by runs/services.py only).

A run deleted here, alone or as a selection, is stopped first, as anywhere else: its worker
writes the stopped result and its sockets hear "finished" before the run goes.
"""

from django.contrib import admin
from django.contrib.admin.utils import unquote

from runs import services
from runs.models import Run, Step
from runs.publishing import group_of, publish
from runs.run_objects import run_to_dict

# How long a delete waits for an active run to stop (its worker may be waiting out a storage
# fault); then it deletes anyway, and the worker, finding its lease gone, writes nothing more.
STOP_WAIT = 30.0


def _stop(run: Run) -> None:
    """Stop an active run and wait until it has ended. Never inside a transaction: on SQLite that
    holds the write lock, and the worker could not write the stop it waits for."""
    if not run.is_active or not services.stop_run_and_wait(run_id=run.pk, timeout=STOP_WAIT):
        return
    # The worker's "finished" comes by its own way (the pool's socket, Redis) and the delete's
    # "deleted" could overtake it: say it from here too, first. A socket says "finished" once.
    ended = Run.objects.select_related("owner").defer("checkpoint").filter(pk=run.pk).first()
    if ended is not None:
        publish(group_of(run.pk), {"type": "run.finished", "run_id": run.pk, "run": run_to_dict(ended)})


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

    def delete_view(self, request, object_id, extra_context=None):
        # The admin deletes inside one transaction: the run is stopped before it begins.
        if request.method == "POST":
            run = self.get_object(request, unquote(object_id))
            if run is not None and self.has_delete_permission(request, run):
                _stop(run)
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request, obj):
        services.delete_run(run=obj)

    def delete_queryset(self, request, queryset):
        # The "delete selected" action, which runs outside a transaction.
        for run in queryset:
            _stop(run)
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
