"""The engine's tables: connections, the inbox, flows, jobs, attempts and API calls."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords

from integrations.choices import (
    ALWAYS_SENT_KINDS,
    AlertChannelKind,
    AlertKind,
    AlertStatus,
    AttemptOutcome,
    ConnectionKind,
    Environment,
    ErrorGroupState,
    EventSource,
    EventStatus,
    JobStatus,
    TriggerSource,
)
from integrations.fields import EncryptedJSONField, reveal


def new_url_token() -> str:
    return secrets.token_urlsafe(24)


# --- configuration (edited by people, history-tracked) --------------------------------
class Connection(models.Model):
    """One configured external system: a Znode store, a Stripe account or an ERP."""

    name = models.SlugField(
        max_length=80, unique=True, help_text="Short unique name, e.g. 'stripe-live'."
    )
    kind = models.CharField(
        max_length=20, choices=ConnectionKind.choices, help_text="Which connector speaks to it."
    )
    environment = models.CharField(
        max_length=10,
        choices=Environment.choices,
        default=Environment.DEV,
        help_text="Deployment stage this connection belongs to.",
    )
    base_url = models.URLField(
        blank=True, help_text="API root, e.g. https://api.example-store.com (blank: default)."
    )
    credentials = EncryptedJSONField(
        default=dict,
        blank=True,
        help_text="Encrypted at rest; keys depend on the kind (api_key, domain_name, ...).",
    )
    webhook_secrets = EncryptedJSONField(
        default=list,
        blank=True,
        help_text="Encrypted at rest. Every listed secret is accepted, so a new one can be "
        "added before the old one is retired.",
    )
    url_token = models.CharField(
        max_length=64,
        unique=True,
        default=new_url_token,
        editable=False,
        help_text="Random part of this connection's webhook URL.",
    )
    rate_limit_per_second = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        default=5,
        help_text="Outbound requests per second allowed to this system (shared by workers).",
    )
    enabled = models.BooleanField(
        default=True, help_text="Disabled connections refuse webhooks (503) and outbound calls."
    )
    settings = models.JSONField(
        default=dict,
        blank=True,
        help_text="Non-secret options for the connector (store domain, API version, ...).",
    )
    created_at = models.DateTimeField(
        auto_now_add=True, help_text="When the connection was created."
    )
    updated_at = models.DateTimeField(
        auto_now=True, help_text="When the connection was last saved."
    )

    # Secrets stay out of the history: a revert keeps the current ones (simple_history
    # fills excluded fields from the live row), so a retired webhook secret or an old
    # credential is never brought back, and old secrets are kept nowhere.
    history = HistoricalRecords(excluded_fields=["credentials", "webhook_secrets"])

    class Meta:
        ordering = ["name"]
        permissions = [
            ("test_connection", "Can test a connection (one authenticated call with its secrets)")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()}, {self.get_environment_display()})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__.pop("_client", None)  # a client is built from the saved values
        super().save(*args, **kwargs)

    @property
    def webhook_path(self) -> str:
        return f"/webhooks/{self.kind}/{self.url_token}/"

    def secret_list(self) -> list[str]:
        return [s for s in (reveal(self.webhook_secrets) or []) if s]

    def credential(self, key: str, default: str | None = None) -> str | None:
        return (reveal(self.credentials) or {}).get(key, default)

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__.pop("_client", None)  # built from the old values
        super().refresh_from_db(*args, **kwargs)

    def client(self) -> Any:
        """This connection's client, from its connector (the registry): the only way
        domain code reaches an external system. One per loaded row."""
        cached = self.__dict__.get("_client")
        if cached is None:
            from integrations.connectors import registry

            cached = self.__dict__["_client"] = registry.get(self.kind).client(self)
        return cached


class Integration(models.Model):
    """Connections that work together: one Znode store, one Stripe account, an ERP."""

    name = models.SlugField(max_length=80, unique=True, help_text="Short unique name.")
    znode = models.ForeignKey(
        Connection,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"kind": ConnectionKind.ZNODE},
        help_text="The Znode store.",
    )
    stripe = models.ForeignKey(
        Connection,
        on_delete=models.PROTECT,
        related_name="+",
        limit_choices_to={"kind": ConnectionKind.STRIPE},
        help_text="The Stripe account.",
    )
    erp = models.ForeignKey(
        Connection,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        limit_choices_to={"kind": ConnectionKind.ERP},
        help_text="The ERP that receives journal entries (optional).",
    )
    enabled = models.BooleanField(default=True, help_text="Disabled integrations run no flows.")
    settings = models.JSONField(
        default=dict, blank=True, help_text="Options the flows read (collection mode, ...)."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def connection_ids(self) -> list[int]:
        return [i for i in (self.znode_id, self.stripe_id, self.erp_id) if i]


class Mapping(models.Model):
    """Named set of field rules that builds an action's input from a context document."""

    key = models.CharField(
        max_length=120,
        unique=True,
        validators=[
            RegexValidator(
                r"^[-a-zA-Z0-9_.]+$",
                "Letters, digits, '-', '_' and '.' only (shipped mappings are <flow>.<step>).",
            )
        ],
        help_text="Unique key, e.g. 'order-to-pi' (shipped ones: '<flow key>.<step name>').",
    )
    description = models.TextField(blank=True, help_text="What the mapping produces, for whom.")
    customized = models.BooleanField(
        default=False,
        help_text="Set when an operator edits the mapping; upgrades then never overwrite it.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class MappingField(models.Model):
    """target ← source expression → transform, with default and required flag."""

    mapping = models.ForeignKey(Mapping, on_delete=models.CASCADE, related_name="fields")
    position = models.PositiveIntegerField(default=0, help_text="Evaluation order.")
    target = models.CharField(
        max_length=200, help_text="Input field of the action; dots build nested objects."
    )
    source = models.CharField(
        max_length=500,
        blank=True,
        help_text="JMESPath over the context {event, steps, integration}; blank: use default.",
    )
    transform = models.CharField(
        max_length=200,
        blank=True,
        help_text="Registered transform, optionally with an argument: 'lower', 'lookup:table'.",
    )
    default = models.JSONField(
        null=True, blank=True, help_text="Value used when the source yields nothing."
    )
    required = models.BooleanField(
        default=False, help_text="Fail the step (quarantine) when no value results."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["mapping", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["mapping", "target"], name="mappingfield_unique_target")
        ]

    def __str__(self) -> str:
        return f"{self.target} ← {self.source or '(default)'}"


class MappingSample(models.Model):
    """A document kept to preview a mapping on (an example order, an edge case), beside
    the recent jobs and events the editor offers."""

    mapping = models.ForeignKey(
        Mapping, on_delete=models.CASCADE, related_name="samples", help_text="The mapping."
    )
    name = models.CharField(max_length=120, help_text="What the sample shows.")
    document = models.JSONField(
        help_text="The document a step reads: its event facts and the earlier steps' "
        "outputs under steps.<name> (as a job's context holds them)."
    )
    created_by = models.CharField(max_length=150, blank=True, help_text="Who kept it.")
    created_at = models.DateTimeField(auto_now_add=True, help_text="When.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["mapping", "name"]

    def __str__(self) -> str:
        return f"{self.mapping.key}: {self.name}"


class LookupTable(models.Model):
    """Operator-editable translation table used by the ``lookup:<key>`` transform."""

    key = models.SlugField(max_length=120, unique=True, help_text="Referenced as lookup:<key>.")
    description = models.TextField(
        blank=True, help_text="What the table translates, for operators."
    )
    entries = models.JSONField(default=dict, help_text="Source value → target value.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class Flow(models.Model):
    """What runs when an event arrives: a trigger and an ordered list of steps."""

    key = models.SlugField(max_length=120, unique=True, help_text="Unique key of the flow.")
    name = models.CharField(max_length=200, help_text="Human name shown to operators.")
    description = models.TextField(blank=True, help_text="What the flow does, for operators.")
    trigger_source = models.CharField(
        max_length=20,
        choices=TriggerSource.choices,
        help_text="Which kind of connection's events start this flow.",
    )
    trigger_event = models.CharField(
        max_length=200,
        help_text="Event type, or a pattern with * (e.g. 'payment_intent.*').",
    )
    condition = models.CharField(
        max_length=500,
        blank=True,
        help_text="Optional JMESPath over the context; the flow runs only when it is truthy.",
    )
    enabled = models.BooleanField(
        default=True,
        help_text="A disabled flow's new jobs wait, paused, and run once it is enabled again.",
    )
    max_attempts = models.PositiveIntegerField(
        null=True, blank=True, help_text="Attempts before quarantine (blank: platform default)."
    )
    retry_base_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="First retry delay; doubles per attempt (blank: default)."
    )
    retry_max_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Longest retry delay (blank: platform default)."
    )
    shipped_version = models.PositiveIntegerField(
        default=0, help_text="Version of the shipped default this row was last upgraded to."
    )
    customized = models.BooleanField(
        default=False,
        help_text="Set when an operator edits the flow; upgrades then never overwrite it.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class FlowStep(models.Model):
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(help_text="Run order within the flow.")
    name = models.SlugField(
        max_length=80, help_text="Name of the step; later steps read its output as steps.<name>."
    )
    action = models.CharField(max_length=200, help_text="Registered action key.")
    mapping = models.ForeignKey(
        Mapping,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        help_text="Builds the action's input; blank passes no input beyond the context.",
    )
    enabled = models.BooleanField(
        default=True,
        help_text="A disabled step is skipped: the flow runs its other steps in order.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["flow", "position"]
        constraints = [
            models.UniqueConstraint(fields=["flow", "position"], name="flowstep_unique_position"),
            models.UniqueConstraint(fields=["flow", "name"], name="flowstep_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.flow.key}#{self.position} {self.name} ({self.action})"


class FlowVersion(models.Model):
    """What a flow was from one moment on: its trigger, condition, steps and their
    mappings, as one definition (JSON). Made when a change is saved through the
    designer, a revert or an import (with who and why), or when a job first runs a
    definition changed some other way. A job keeps the version it started with: a
    later change cannot break a job already in flight."""

    flow = models.ForeignKey(
        Flow, on_delete=models.CASCADE, related_name="versions", help_text="The flow."
    )
    number = models.PositiveIntegerField(help_text="1, 2, 3… within the flow.")
    digest = models.CharField(
        max_length=64,
        help_text="SHA-256 of the definition's canonical JSON (equal definitions, equal digests).",
    )
    definition = models.JSONField(
        help_text="The flow as it runs: trigger, condition, steps with actions and mappings."
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When it was first seen.")
    created_by = models.CharField(
        max_length=150,
        blank=True,
        help_text="Who saved it (empty: first seen by a job, made outside the designer).",
    )
    reason = models.CharField(max_length=500, blank=True, help_text="Why it was changed.")

    class Meta:
        ordering = ["flow", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["flow", "number"], name="flowversion_unique_number"),
        ]

    def __str__(self) -> str:
        return f"{self.flow.key} v{self.number}"


class EnvironmentValue(models.Model):
    """A value that differs between environments (Dev, QA, Prod): a URL, an account
    number, a GL code. A mapping row names it (default ``{"$env": "NAME"}``) and each
    environment resolves it from its own table; bundles never carry these rows."""

    name = models.SlugField(
        max_length=120, unique=True, help_text='Referenced by mappings as {"$env": "<name>"}.'
    )
    value = models.JSONField(help_text="The value in this environment (text, number, object).")
    description = models.TextField(blank=True, help_text="What it is, for whom.")
    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class BundleImport(models.Model):
    """The audit of one flow bundle imported into this environment."""

    name = models.CharField(max_length=200, help_text="The bundle's name (its file name).")
    digest = models.CharField(max_length=64, help_text="The hash of the bundle's content.")
    imported_by = models.CharField(max_length=150, help_text="Who imported it.")
    imported_at = models.DateTimeField(auto_now_add=True, help_text="When.")
    summary = models.JSONField(
        default=list, help_text="What it created and changed, as the dry run showed it."
    )

    class Meta:
        ordering = ["-imported_at", "-id"]
        permissions = [("import_bundle", "Can import a flow bundle (promote flows)")]

    def __str__(self) -> str:
        return f"{self.name} ({self.digest[:12]})"


# --- runtime evidence (append-mostly, no history; attempts are the audit log) -------
class InboundEvent(models.Model):
    """The inbox: one verified webhook or polled change, kept as it arrived."""

    # Indexes are few on purpose: every one is paid on each webhook insert. The
    # unique (connection, external_id) constraint also serves lookups by connection.
    connection = models.ForeignKey(
        Connection,
        on_delete=models.PROTECT,
        related_name="events",
        db_index=False,
        help_text="The connection the event came from (its webhook URL or its poller).",
    )
    external_id = models.CharField(
        max_length=255, help_text="The sender's event id (evt_…, Znode EventId, poll key)."
    )
    event_type = models.CharField(
        max_length=120,
        help_text="The sender's event type (Stripe's type; Znode's module.name, lower case).",
    )
    source = models.CharField(
        max_length=10,
        choices=EventSource.choices,
        default=EventSource.WEBHOOK,
        help_text="How it arrived: webhook, poller, operator replay or schedule.",
    )
    status = models.CharField(
        max_length=12,
        choices=EventStatus.choices,
        default=EventStatus.RECEIVED,
        help_text="Where the event stands; set by routing and by its jobs' statuses.",
    )
    status_reason = models.CharField(
        max_length=500,
        blank=True,
        help_text="Why it has its status (ignored, failed, waiting, duplicate, skipped).",
    )
    object_id = models.CharField(
        max_length=255, blank=True, db_index=True, help_text="Id of the object the event is about."
    )
    reference = models.CharField(
        max_length=255,
        blank=True,
        db_index=True,
        help_text="Business reference found in the event (order number), for search.",
    )
    headers = models.JSONField(default=dict, help_text="Request headers, secrets redacted.")
    body = models.TextField(help_text="Raw body exactly as received (the signed bytes).")
    remote_addr = models.GenericIPAddressField(
        null=True,
        blank=True,
        help_text="IP address the webhook came from (empty for polled and replayed events).",
    )
    occurred_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the sender says it happened (Stripe created, Znode EventTimeStamp).",
    )
    received_at = models.DateTimeField(auto_now_add=True, help_text="When the platform stored it.")
    processed_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was settled as processed, ignored or duplicate."
    )
    deliveries = models.PositiveIntegerField(
        default=1, help_text="How many times the sender delivered this event."
    )
    replay_of = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="replays",
        db_index=False,  # partial index below: almost every row has none
        help_text="The event an operator replayed to create this one.",
    )
    duplicate_of = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # looked up from the duplicate, never the other way round
        help_text="For a duplicate change: the earlier event whose jobs already cover it.",
    )

    class Meta:
        ordering = ["-id"]  # ids grow with arrival; no index on received_at needed
        permissions = [("replay_event", "Can replay an event (runs its flows again)")]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "external_id"], name="inboundevent_unique_external_id"
            )
        ]
        indexes = [
            models.Index(
                fields=["status", "received_at"],
                name="inbox_received_idx",
                condition=Q(status="received"),
            ),
            models.Index(
                fields=["replay_of"], name="inbox_replay_idx", condition=Q(replay_of__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.external_id}"


class Job(models.Model):
    """One run of one flow for one event (or schedule tick)."""

    event = models.ForeignKey(
        InboundEvent,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="jobs",
        help_text="The event that made the job (empty for jobs filed by a sync or drift check).",
    )
    flow = models.ForeignKey(
        Flow, on_delete=models.PROTECT, related_name="jobs", help_text="The flow the job runs."
    )
    integration = models.ForeignKey(
        Integration,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="jobs",
        help_text="The integration it runs for.",
    )
    status = models.CharField(
        max_length=12,
        choices=JobStatus.choices,
        default=JobStatus.PENDING,
        help_text="Where the job stands.",
    )
    attempts = models.PositiveIntegerField(
        default=0, help_text="Tries started so far (each claim by a worker counts one)."
    )
    max_attempts = models.PositiveIntegerField(help_text="Attempts before quarantine.")
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When a job waiting to retry is due again."
    )
    lease_expires_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the running worker's lease ends; after it, another may reclaim it.",
    )
    locked_by = models.CharField(
        max_length=100, blank=True, help_text="The worker (host:pid) that last claimed the job."
    )
    context = models.JSONField(
        default=dict, help_text="Input document the mappings read (event payload, integration)."
    )
    step_outputs = models.JSONField(
        default=dict, help_text="Outputs of the steps that succeeded, by step name."
    )
    reference = models.CharField(
        max_length=255, blank=True, db_index=True, help_text="Business reference (order number)."
    )
    last_error = models.TextField(
        blank=True, help_text="The last failure as '[step] message', or an operator's reason."
    )
    last_error_code = models.CharField(
        max_length=60,
        blank=True,
        help_text="Error code of the last failure (timeout, rate_limited, card_declined, ...).",
    )
    flow_version = models.ForeignKey(
        FlowVersion,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # looked up from the job only
        help_text="The flow's version the job runs (set when it first runs; an operator's "
        "retry of a failed job takes the flow as it is then).",
    )
    error_group = models.ForeignKey(
        "ErrorGroup",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="jobs",
        db_index=False,  # partial index below: most jobs never fail
        help_text="The error group of the job's last failure.",
    )
    created_at = models.DateTimeField(
        auto_now_add=True, db_index=True, help_text="When the job was made."
    )
    updated_at = models.DateTimeField(auto_now=True, help_text="When the job last changed.")
    finished_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When it succeeded, was quarantined or discarded (cleared by a retry).",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("operate_job", "Can retry, quarantine and discard jobs")]
        constraints = [
            models.UniqueConstraint(
                fields=["event", "flow", "integration"],
                name="job_unique_event_flow_integration",
                condition=Q(event__isnull=False),
            )
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="job_due_idx"),
            models.Index(fields=["status", "lease_expires_at"], name="job_lease_idx"),
            # The job waiting longest to run (GET /health/), read without a scan: since
            # it last became pending (an operator's retry, a resume, a release).
            models.Index(fields=["status", "updated_at"], name="job_status_updated_idx"),
            # A group's jobs by status (its page, its bulk actions, the alerts), read
            # without touching the jobs that never failed.
            models.Index(
                fields=["error_group", "status"],
                name="job_error_group_idx",
                condition=Q(error_group__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"Job {self.pk} {self.flow.key}"


class Attempt(models.Model):
    """One try of a job, or one operator action on it. Never deleted."""

    job = models.ForeignKey(
        Job, on_delete=models.CASCADE, related_name="attempt_log", help_text="The job tried."
    )
    number = models.PositiveIntegerField(help_text="1 for the first try; 0 for operator actions.")
    outcome = models.CharField(
        max_length=15,
        choices=AttemptOutcome.choices,
        default=AttemptOutcome.RUNNING,
        help_text="How the attempt ended (running while it runs).",
    )
    worker = models.CharField(
        max_length=100,
        blank=True,
        help_text="The worker (host:pid) that ran it; empty for operator actions.",
    )
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        help_text="The staff user who acted, for operator actions.",
    )
    note = models.TextField(blank=True, help_text="Operator reason, or what the attempt did.")
    step = models.CharField(max_length=80, blank=True, help_text="Step running when it ended.")
    started_at = models.DateTimeField(auto_now_add=True, help_text="When the attempt started.")
    finished_at = models.DateTimeField(null=True, blank=True, help_text="When the attempt ended.")
    duration_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="How long the attempt ran, in milliseconds."
    )
    error_class = models.CharField(
        max_length=200, blank=True, help_text="Dotted class name of the error that failed it."
    )
    error_message = models.TextField(
        blank=True, help_text="The failure's message, secrets redacted."
    )
    traceback = models.TextField(
        blank=True, help_text="Python traceback of the failure, secrets redacted."
    )
    retry_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the job is retried after this failure (empty: no retry).",
    )

    class Meta:
        ordering = ["job", "started_at", "id"]

    def __str__(self) -> str:
        return f"Attempt {self.number} of job {self.job_id}: {self.outcome}"


class ApiCall(models.Model):
    """One outbound request to an external system, bodies redacted and truncated."""

    connection = models.ForeignKey(
        Connection,
        on_delete=models.PROTECT,
        null=True,
        related_name="api_calls",
        help_text="The system called.",
    )
    job = models.ForeignKey(
        Job,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="api_calls",
        help_text="The job whose run made the call, if any.",
    )
    attempt = models.ForeignKey(
        Attempt,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="api_calls",
        help_text="The attempt that made the call, if any.",
    )
    method = models.CharField(max_length=10, help_text="HTTP method.")
    url = models.CharField(max_length=2000, help_text="Request URL, secrets redacted.")
    operation = models.CharField(max_length=120, blank=True, help_text="Connector operation name.")
    idempotency_key = models.CharField(
        max_length=255,
        blank=True,
        db_index=True,
        help_text="Idempotency key sent with the request, if any.",
    )
    request_headers = models.JSONField(default=dict, help_text="Request headers, secrets redacted.")
    request_body = models.TextField(
        blank=True, help_text="Request body, secrets redacted, cut at the body limit."
    )
    status_code = models.PositiveIntegerField(
        null=True, blank=True, help_text="HTTP status of the answer (empty: no answer came)."
    )
    response_body = models.TextField(
        blank=True, help_text="Response body, secrets redacted, cut at the body limit."
    )
    error = models.TextField(blank=True, help_text="The error the call raised, if any.")
    duration_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="How long the call took, in milliseconds."
    )
    reference = models.CharField(
        max_length=255,
        blank=True,
        db_index=True,
        help_text="Business reference of the job that made it (order number).",
    )
    created_at = models.DateTimeField(
        auto_now_add=True, db_index=True, help_text="When the call was recorded."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # A connection's latest calls (does it keep failing, the alert check asks
            # every minute), read backwards on the index.
            models.Index(fields=["connection", "-created_at"], name="apicall_connection_idx")
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.url} → {self.status_code or self.error[:40]}"


class WorkerHeartbeat(models.Model):
    """A running worker cluster, as its main process last said it was alive (GET
    /health/ reads the newest); removed when it stops."""

    worker = models.CharField(
        max_length=100, unique=True, help_text="host:pid of the worker's main process."
    )
    started_at = models.DateTimeField(help_text="When the worker started.")
    seen_at = models.DateTimeField(help_text="When it last said it was alive.")

    def __str__(self) -> str:
        return f"worker {self.worker}"


class PollCursor(models.Model):
    """Where the poller of one connection stands: its watermarks and a lease."""

    connection = models.OneToOneField(Connection, on_delete=models.CASCADE, related_name="poll")
    watermark = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Newest order date seen (the next window starts before it).",
    )
    watermarks = models.JSONField(
        default=dict,
        blank=True,
        help_text="The poller's other watermarks by list (e.g. returns): the newest change "
        "time seen, as ISO 8601 text.",
    )
    lease_until = models.DateTimeField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_emitted = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"poller of {self.connection.name}"


class PolledOrder(models.Model):
    """An order the poller has seen, with a fingerprint of what matters to the flows.

    Open orders are re-read on every poll, so state changes to orders older than the
    date window are still found.
    """

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="+")
    order_id = models.BigIntegerField()
    order_number = models.CharField(max_length=100, db_index=True)
    fingerprint = models.CharField(max_length=64)
    version = models.PositiveIntegerField(default=1)
    state = models.CharField(max_length=100, blank=True)
    open = models.BooleanField(default=True, db_index=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "order_id"], name="polledorder_unique")
        ]

    def __str__(self) -> str:
        return f"{self.order_number} v{self.version}"


class RoutedChange(models.Model):
    """The last change of one external object that the inbox turned into jobs, or
    that we wrote ourselves.

    One row per (connection, object): routing locks it, so two sources reporting the
    same change at once cannot both create jobs. See
    :meth:`integrations.connectors.base.Connector.change_fingerprint`. An action about
    to write the object announces the state it writes
    (:func:`integrations.services.inbox.change_expect`): the event that reports exactly
    that state is the echo of the write and makes no job.
    """

    # Lookups go through the unique (connection, object_key) key; no other index is
    # worth its cost on a row written for every routed change.
    connection = models.ForeignKey(
        Connection,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        help_text="The connection the object belongs to.",
    )
    object_key = models.CharField(
        max_length=255, help_text="The object within the connection, e.g. 'order:42'."
    )
    fingerprint = models.CharField(
        max_length=64,
        blank=True,
        help_text="Hash of what flows act on, as of the last event routed to jobs or our "
        "own last write (whichever came later).",
    )
    event = models.ForeignKey(
        InboundEvent,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        help_text="The last event routed to jobs for this object.",
    )
    created_event = models.ForeignKey(
        InboundEvent,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
        help_text="The creation event routed to jobs (later ones are duplicates).",
    )
    routed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the last event was routed to jobs."
    )
    written_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When our own write last set the fingerprint. Until an event is routed "
        "after it, an event that reports exactly this state is the echo of that write and "
        "makes no job.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "object_key"], name="routedchange_unique_object"
            )
        ]

    def __str__(self) -> str:
        return f"{self.object_key} @ {self.connection_id}"


# --- operations: error groups and alerts ----------------------------------------------
class ErrorGroup(models.Model):
    """Failures of one kind: the same flow, step, error class and message (with ids and
    numbers taken out, :func:`integrations.services.error_groups.error_fingerprint`).
    Operators triage the group and retry or discard its jobs at once.

    Counters move with ``F()`` updates, so the history holds the operators' changes
    (state, assignee, bulk actions, with who and why) and the reopenings."""

    fingerprint = models.CharField(
        max_length=64, unique=True, editable=False, help_text="Hash of what makes the kind."
    )
    flow = models.ForeignKey(
        Flow, on_delete=models.PROTECT, related_name="error_groups", help_text="The flow failing."
    )
    step = models.CharField(max_length=80, blank=True, help_text="The step that failed.")
    error_class = models.CharField(max_length=200, help_text="The error's class.")
    message = models.CharField(
        max_length=500, help_text="The error's message with ids, amounts and numbers as <…>."
    )
    sample = models.TextField(
        blank=True, help_text="The latest failure's message as it was (secrets redacted)."
    )
    state = models.CharField(
        max_length=12,
        choices=ErrorGroupState.choices,
        default=ErrorGroupState.OPEN,
        help_text="Triage: open, acknowledged (someone is on it), resolved (reopens when the "
        "error comes back; set by itself once no job of the group is left failing), ignored "
        "(counted, never alerted).",
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        limit_choices_to={"is_staff": True, "is_active": True},
        help_text="Who is looking into it.",
    )
    occurrences = models.PositiveIntegerField(
        default=0, help_text="Failed attempts of this kind, retries included."
    )
    first_seen_at = models.DateTimeField(help_text="The first failure of this kind.")
    last_seen_at = models.DateTimeField(help_text="The latest failure of this kind.")
    resolved_at = models.DateTimeField(null=True, blank=True, help_text="When it was resolved.")
    reopened = models.PositiveIntegerField(
        default=0, help_text="Times the error came back after the group was resolved."
    )
    alerted_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When this opening of the group was alerted (cleared when it reopens).",
    )
    alerted_size = models.PositiveIntegerField(
        default=0, help_text="Jobs out of retries when the group was last alerted."
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        permissions = [
            ("triage_errorgroup", "Can triage error groups (state, assignee)"),
        ]
        indexes = [models.Index(fields=["state", "last_seen_at"], name="errorgroup_state_idx")]

    def __str__(self) -> str:
        return f"{self.flow.key} [{self.step or '-'}] {self.message[:80]}"


class AlertChannel(models.Model):
    """Where alerts go: email addresses or a chat webhook (Slack-compatible JSON)."""

    name = models.CharField(max_length=80, unique=True, help_text="Short name, e.g. 'ops-slack'.")
    kind = models.CharField(
        max_length=10, choices=AlertChannelKind.choices, help_text="Email or chat webhook."
    )
    recipients = models.CharField(
        max_length=1000,
        blank=True,
        help_text="Email: addresses separated by commas. Not used by webhooks.",
    )
    webhook_url = EncryptedJSONField(
        default=str,
        blank=True,
        help_text='Webhook: the URL that receives {"text": ...} (encrypted at rest; it '
        "holds the chat's token).",
    )
    kinds = models.JSONField(
        default=list,
        blank=True,
        help_text="The kinds of alert sent here (a list of kinds); empty: every kind.",
    )
    enabled = models.BooleanField(default=True, help_text="Disabled channels receive nothing.")
    history = HistoricalRecords(excluded_fields=["webhook_url"])

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def takes(self, kind: str) -> bool:
        """Digests and tests reach every enabled channel; an alert, those of its kind."""
        return self.enabled and (not self.kinds or kind in self.kinds or kind in ALWAYS_SENT_KINDS)


class AlertRule(models.Model):
    """When an alert is raised: one rule per kind, with its threshold."""

    kind = models.CharField(
        max_length=20,
        choices=[c for c in AlertKind.choices if c[0] not in ALWAYS_SENT_KINDS],
        unique=True,
        help_text="What the rule watches.",
    )
    enabled = models.BooleanField(default=True, help_text="Disabled rules raise nothing.")
    threshold = models.PositiveIntegerField(
        validators=[MinValueValidator(1)],
        help_text="Group opened: its jobs out of retries; group grew: jobs out of retries "
        "(then each doubling); backlog: jobs waiting to run; latency: seconds the oldest job "
        "waited; connection failing: failed calls in a row; reconciliation: discrepancies.",
    )
    sustained_seconds = models.PositiveIntegerField(
        default=0,
        help_text="Connection failing: how long the failures in a row must span, in seconds.",
    )
    repeat_minutes = models.PositiveIntegerField(
        default=60,
        validators=[MinValueValidator(1)],
        help_text="The same alert is sent again at most once in this many minutes; repeats "
        "in between go into the digest.",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["kind"]

    def __str__(self) -> str:
        return self.get_kind_display()


class Alert(models.Model):
    """One alert raised: sent, held for the digest, or carried by one. Never deleted."""

    kind = models.CharField(max_length=20, choices=AlertKind.choices, help_text="What it is.")
    key = models.CharField(
        max_length=200, help_text="What it is about (group:12, connection:3, backlog)."
    )
    subject = models.CharField(max_length=300, help_text="One line, as sent.")
    text = models.TextField(help_text="The message, as sent.")
    status = models.CharField(
        max_length=12, choices=AlertStatus.choices, help_text="Where the alert stands."
    )
    repeats = models.PositiveIntegerField(
        default=0, help_text="Times it was raised again within the rule's repeat window."
    )
    repeats_digested = models.PositiveIntegerField(
        default=0, help_text="Of those repeats, how many a digest reported."
    )
    error_group = models.ForeignKey(
        ErrorGroup,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="alerts",
        help_text="The error group it is about.",
    )
    digest = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="carried",
        help_text="The digest that carried it.",
    )
    deliveries = models.JSONField(
        default=list,
        blank=True,
        help_text="Each delivery: channel, when, and the answer or the error.",
    )
    created_at = models.DateTimeField(auto_now_add=True, help_text="When it was raised.")
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When it went out.")
    tried_at = models.DateTimeField(
        null=True, blank=True, help_text="When its latest delivery started."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["key", "created_at"], name="alert_key_idx"),
            models.Index(
                fields=["status", "created_at"],
                name="alert_held_idx",
                condition=Q(status="held"),
            ),
        ]

    def __str__(self) -> str:
        return self.subject


class Tally(models.Model):
    """A count of one minute (or hour) of one metric, for the dashboard: written as
    increments by every process (integrations/kernel/stats.py), read by period."""

    period = models.CharField(
        max_length=1, help_text="m: the minute starting at start; h: the hour."
    )
    start = models.DateTimeField(help_text="When the minute or hour starts (UTC).")
    metric = models.CharField(max_length=40, help_text="What is counted (events, job_…, …).")
    flow = models.CharField(max_length=120, blank=True, help_text="The flow, where one is.")
    connection = models.CharField(
        max_length=80, blank=True, help_text="The connection's name, where one is."
    )
    label = models.CharField(
        max_length=40, blank=True, help_text="A further split (a latency bucket, a kind)."
    )
    count = models.BigIntegerField(default=0, help_text="How many.")
    total = models.BigIntegerField(default=0, help_text="Their sum (milliseconds), where kept.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["period", "start", "metric", "flow", "connection", "label"],
                name="tally_unique_slot",
            )
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.start:%Y-%m-%d %H:%M} {self.count}"
