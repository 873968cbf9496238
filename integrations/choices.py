from django.db import models


class ConnectionKind(models.TextChoices):
    ZNODE = "znode", "Znode"
    STRIPE = "stripe", "Stripe"
    ERP = "erp", "ERP"


class Environment(models.TextChoices):
    DEV = "dev", "Dev"
    QA = "qa", "QA"
    PROD = "prod", "Prod"


class EventStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSING = "processing", "Processing"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed"
    IGNORED = "ignored", "Ignored"
    # Stored as evidence, no job: the same change was already routed (another source
    # reported it, or it is the echo of our own write to a field no flow reads).
    DUPLICATE = "duplicate", "Duplicate change (no job)"
    # Its jobs wait for a paused integration or a disabled flow, and run when it resumes.
    WAITING = "waiting", "Waiting (integration or flow paused)"


class EventSource(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    POLL = "poll", "Poller"
    REPLAY = "replay", "Operator replay"
    SCHEDULE = "schedule", "Schedule"


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    RETRYING = "retrying", "Waiting to retry"
    SUCCEEDED = "succeeded", "Succeeded"
    QUARANTINED = "quarantined", "Quarantined"
    DISCARDED = "discarded", "Discarded"
    # Made while its flow or integration was disabled: runs when both are enabled again.
    PAUSED = "paused", "Paused (flow or integration disabled)"


class AttemptOutcome(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    RETRY = "retry", "Failed, will retry"
    QUARANTINED = "quarantined", "Failed, quarantined"
    LEASE_EXPIRED = "lease_expired", "Abandoned (worker lost)"
    OPERATOR = "operator", "Operator action"
    # The worker was told to stop: it finished the step it was in and gave the job back.
    RELEASED = "released", "Released (worker stopping)"


class TriggerSource(models.TextChoices):
    ZNODE = "znode", "Znode event"
    STRIPE = "stripe", "Stripe event"
    ERP = "erp", "ERP event"
    SCHEDULE = "schedule", "Schedule"
