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


class ErrorGroupState(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged (someone is on it)"
    RESOLVED = "resolved", "Resolved (reopens if it comes back)"
    IGNORED = "ignored", "Ignored (no alerts)"


class AlertKind(models.TextChoices):
    GROUP_OPENED = "group_opened", "An error group has jobs out of retries"
    GROUP_GREW = "group_grew", "An error group grew past a threshold"
    BACKLOG = "backlog", "Jobs waiting to run pass a threshold"
    LATENCY = "latency", "The oldest waiting job waited longer than a threshold"
    CONNECTION_FAILING = "connection_failing", "A connection keeps failing"
    RECONCILIATION = "reconciliation", "Reconciliation found a discrepancy"
    DIGEST = "digest", "Digest of alerts held back"
    TEST = "test", "Test from the admin"


# Kinds every enabled channel takes, whatever kinds it was given.
ALWAYS_SENT_KINDS = (AlertKind.DIGEST, AlertKind.TEST)


class AlertChannelKind(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Chat webhook (Slack-compatible JSON)"


class AlertStatus(models.TextChoices):
    PENDING = "pending", "To send"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    HELD = "held", "Held for the digest"
    DIGESTED = "digested", "Sent in a digest"
    FAILED = "failed", "Delivery failed (every channel)"
    NO_CHANNEL = "no_channel", "Recorded (no enabled channel takes it)"
