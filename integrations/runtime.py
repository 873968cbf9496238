"""What an action receives: the job it runs for and helpers to reach the other systems."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from integrations.kernel.exceptions import ConnectorConfigurationError

if TYPE_CHECKING:
    from integrations.models import Attempt, Connection, InboundEvent, Integration, Job
    from integrations.services.flow_versions import StepDef


def make_idempotency_key(*parts: object) -> str:
    """Deterministic key from business identifiers, within Stripe's 255 characters."""
    key = ":".join(str(p) for p in parts if p not in (None, ""))
    if len(key) <= 255:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[:190]}:{digest}"


@dataclass
class ActionContext:
    job: Job
    step: StepDef
    attempt: Attempt
    document: dict[str, Any]

    @property
    def event(self) -> InboundEvent | None:
        return self.job.event

    @property
    def integration(self) -> Integration | None:
        return self.job.integration

    def connection(self, kind: str) -> Connection:
        integration = self.integration
        connection = getattr(integration, kind, None) if integration else None
        if connection is None:
            raise ConnectorConfigurationError(
                f"job {self.job.pk}: the integration has no {kind} connection"
            )
        if not connection.enabled:
            raise ConnectorConfigurationError(f"connection {connection.name} is disabled")
        return connection

    def client(self, kind: str) -> Any:
        """The client of the integration's ``kind`` connection (``connection.client()``)."""
        return self.connection(kind).client()

    def idempotency_key(self, *parts: object) -> str:
        return make_idempotency_key(*parts)


@dataclass
class ServiceContext:
    """What an action's service needs of its context, for a run outside any job (a
    backfill, a scheduled check): the integration, its clients (one each, kept), the
    idempotency keys. ``run_key`` makes this run's writes its own (a job's are keyed
    by the job); ``job`` is None."""

    integration: Integration
    run_key: str = ""
    job: Job | None = None
    _clients: dict[str, Any] = field(default_factory=dict)

    def connection(self, kind: str) -> Connection:
        connection = getattr(self.integration, kind, None)
        if connection is None:
            raise ConnectorConfigurationError(f"the integration has no {kind} connection")
        if not connection.enabled:
            raise ConnectorConfigurationError(f"connection {connection.name} is disabled")
        return connection

    def client(self, kind: str) -> Any:
        if kind not in self._clients:
            self._clients[kind] = self.connection(kind).client()
        return self._clients[kind]

    def idempotency_key(self, *parts: object) -> str:
        return make_idempotency_key(*parts)
