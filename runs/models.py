"""Runs and their steps: data and cheap derived properties only (writes live in runs/services.py)."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Run(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        PAUSED = "paused"
        FINISHED = "finished"
        STOPPED = "stopped"
        FAILED = "failed"
        INTERRUPTED = "interrupted"

    # A run in one of these states has (or should have) a live executor somewhere.
    ACTIVE = (Status.QUEUED, Status.RUNNING, Status.PAUSED)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="runs")
    label = models.CharField(max_length=200, blank=True)
    method = models.CharField(max_length=20)
    problem = models.CharField(max_length=40)
    # The normalized run spec (runs.optim.Spec.to_dict()): what the run was asked to do.
    spec = models.JSONField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    n_steps = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    # The stepper's state after the last stored step (runs.optim.encode_checkpoint), so an
    # interrupted run resumes exactly where its stored steps end.
    checkpoint = models.BinaryField(null=True, blank=True, editable=False)
    # Latest figures, kept with each batch so lists sort and filter without reading steps.
    best_fun = models.FloatField(null=True, blank=True)
    nit = models.PositiveIntegerField(default=0)
    nfev = models.PositiveBigIntegerField(default=0)
    elapsed = models.FloatField(default=0.0)
    # Controls (space-separated "pause" / "resume" / "stop", oldest first) asked for by a server
    # process that does not drive the run; the process that does takes them from here.
    control_requests = models.CharField(max_length=64, blank=True, default="", editable=False)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["owner", "-created"])]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.method} on {self.problem}, {self.status})"

    def get_absolute_url(self) -> str:
        return f"/runs/{self.pk}/"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def group_name(self) -> str:
        return f"run-{self.pk}"


class Step(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    seq = models.PositiveIntegerField()
    nit = models.PositiveIntegerField()
    phase = models.CharField(max_length=10)
    fun = models.FloatField(null=True)
    nfev = models.PositiveBigIntegerField()
    njev = models.PositiveBigIntegerField()
    elapsed = models.FloatField()
    # The PROTOCOL Step as JSON text, encoded once: stored, published and served as is.
    data = models.TextField()

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="step_unique_run_seq")]

    def __str__(self) -> str:
        return f"Step {self.seq} of run {self.run_id}"
