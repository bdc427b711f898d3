"""Studies, runs and their steps: data and cheap derived properties only (writes live in
runs/services.py, runs/studies.py and the worker's runs/driver.py)."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Study(models.Model):
    """One problem × method configurations × repeats: it owns its runs (Run.study)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="studies")
    label = models.CharField(max_length=200, blank=True)
    problem = models.CharField(max_length=40)
    # The normalized study spec (runs.optim.study.StudySpec.to_dict()): posting it again relaunches it.
    spec = models.JSONField()
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["owner", "-created"])]

    def __str__(self) -> str:
        return f"Study {self.pk} ({self.problem})"

    def get_absolute_url(self) -> str:
        return f"/studies/{self.pk}/"


class Run(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        PAUSED = "paused"
        FINISHED = "finished"
        STOPPED = "stopped"
        FAILED = "failed"
        INTERRUPTED = "interrupted"

    # Not ended: a run in one of these states counts against its owner's cap.
    ACTIVE = (Status.QUEUED, Status.RUNNING, Status.PAUSED)
    ENDED = (Status.FINISHED, Status.STOPPED, Status.FAILED, Status.INTERRUPTED)

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
    # When it last joined the queue (created, resumed, auto-resumed): workers take the oldest first.
    queued_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # The lease (runs/leases.py): the one worker process that may write this run, until `lease_expires`.
    # Taken atomically, renewed with every commit and every few seconds, released when it lets go.
    lease_holder = models.CharField(max_length=120, blank=True, default="", editable=False)
    lease_expires = models.DateTimeField(null=True, blank=True, editable=False)
    # The lease holder's last renewal (kept for the record once the lease is gone).
    heartbeat = models.DateTimeField(null=True, blank=True)
    # How often a dead worker or server cut this run short (automatic resumes stop at a cap).
    interruptions = models.PositiveSmallIntegerField(default=0)
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
    # Controls (space-separated "pause" / "stop", oldest first) waiting for the worker that holds
    # the run; it takes them from here when nudged (runs/dispatch.py) or at its next poll.
    control_requests = models.CharField(max_length=64, blank=True, default="", editable=False)
    # A study's run: which of its configurations, which repeat.
    study = models.ForeignKey(Study, null=True, blank=True, on_delete=models.CASCADE, related_name="runs")
    study_config = models.PositiveSmallIntegerField(null=True, blank=True)
    study_repeat = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["owner", "-created"]), models.Index(fields=["status", "queued_at", "id"])]

    def __str__(self) -> str:
        return f"Run {self.pk} ({self.method} on {self.problem}, {self.status})"

    def get_absolute_url(self) -> str:
        return f"/runs/{self.pk}/"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def worker(self) -> str | None:
        """The worker process driving the run, while it runs."""
        return (self.lease_holder or None) if self.status == self.Status.RUNNING else None

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
    # The light PROTOCOL Step as JSON text (scalar fields, small extras), encoded once: stored,
    # published and served as is.
    data = models.TextField()
    # The step's bulky arrays (DE population and energies, L-BFGS-B line search) in the exact
    # binary form of runs.optim.bulk: often only what changed since the previous step; null when
    # the step has none. Served (inside `extra`) only where asked for (runs/stored_steps.py).
    bulk = models.BinaryField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="step_unique_run_seq")]

    def __str__(self) -> str:
        return f"Step {self.seq} of run {self.run_id}"


class RunTrace(models.Model):
    """A study run's best-so-far curve on fixed grids and its first hits of the targets
    (runs/study_trace.py), folded in by the driver with each batch of steps, in the batch's
    transaction: a study's aggregates read these, never its steps."""

    run = models.OneToOneField(Run, on_delete=models.CASCADE, primary_key=True, related_name="trace")
    data = models.TextField()


class ApiToken(models.Model):
    """A personal API token (runs/tokens.py): only the SHA-256 of its text is stored, so the text
    is shown once, when it is made; `prefix` (its first characters) tells a user's tokens apart."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(null=True, blank=True)  # to the minute (written at most once a minute)
    revoked = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["owner", "revoked"])]

    def __str__(self) -> str:
        return f"Token {self.prefix}… ({self.name}) of {self.owner_id}"


class UserProblem(models.Model):
    """A problem a user defined as an expression (runs/optim/expressions.py). `definition` is the
    checked definition's JSON (Definition.to_dict()); a run on it stores a copy in its spec, so
    editing or deleting the problem never changes what a stored run ran."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="problems")
    # a slug, unique per owner and never a catalogue name (the definition's checks refuse those)
    name = models.CharField(max_length=40)
    title = models.CharField(max_length=100)
    definition = models.JSONField()
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="userproblem_unique_owner_name")]

    def __str__(self) -> str:
        return f"Problem {self.name} of {self.owner_id}"
