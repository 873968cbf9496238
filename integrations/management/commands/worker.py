"""`manage.py worker`: the django-q2 cluster (what `qcluster` starts), made to stop
gracefully when SIGTERM goes to its whole process group, as systemd sends it by
default and as `serve` and `demo` stop their children.

Why not `qcluster` itself: django-q2's sentinel process resets SIGTERM to the default
action, and the pool, monitor and pusher it forks inherit that. A group-wide SIGTERM
therefore kills the sentinel and every worker mid-step at once, and the main
process, which is told to stop at the same moment, then waits forever on the
sentinel's stop event (a multiprocessing condition whose sleeper, the dead
sentinel, never wakes to acknowledge it) until SIGKILL.

Here every process of the cluster takes SIGTERM as "stop soon": the main process
asks the sentinel to stop (django-q2's own orderly stop: the pusher stops fetching,
each worker gets a poison pill after its current task), and each worker finishes
the step it is in, starts no further step and gives the job back (pending, lease
released, resumed by the next worker at the next step;
``integrations.services.jobs.worker_stopping``). A second SIGTERM changes nothing;
SIGKILL is still the supervisor's last resort, after which the job's lease expires
and the sweeper reclaims it.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connections
from django.utils import timezone
from django_q import cluster as q_cluster

from integrations.services.health import worker_gone, worker_heartbeat
from integrations.services.jobs import default_worker_id, worker_stopping

logger = logging.getLogger("integrations.worker")


def _stop_soon(signum, frame) -> None:
    worker_stopping.set()


class GracefulSentinel(q_cluster.Sentinel):
    """django-q2's sentinel, with SIGTERM as "stop soon" instead of "die now": in
    itself, and, inherited through fork, in the workers, the monitor and the pusher
    it starts. The main process decides when the cluster stops."""

    def start(self) -> None:
        signal.signal(signal.SIGTERM, _stop_soon)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # see Command
        super().start()


class Command(BaseCommand):
    help = (
        "Run the django-q2 worker cluster; SIGTERM (to it or to its process group) stops "
        "it within seconds, finishing the step in progress."
    )

    def handle(self, *args, **options) -> None:
        settings.SECRET_KEY  # noqa: B018 - as qcluster: signing needs it, fail early
        q_cluster.Sentinel = GracefulSentinel  # Cluster.start looks the class up here
        stop = threading.Event()
        cluster = q_cluster.Cluster()

        def requested(signum, frame) -> None:
            stop.set()  # acted on below, never inside the handler (no re-entry)

        # Cluster() installed its own handlers, which stop the cluster from inside
        # the handler; ours only ask.
        signal.signal(signal.SIGTERM, requested)
        signal.signal(signal.SIGINT, requested)
        # Held until each process has its handler: the sentinel is forked with
        # SIGTERM blocked and sets the default action before it gets to ours.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            cluster.start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        # Said from here, after the sentinel was forked (no connection is shared with
        # it): this process lives as long as the cluster does (GET /health/).
        heartbeat = _Heartbeat()
        try:
            heartbeat.beat()
            while not stop.wait(0.5):
                if not cluster.sentinel.is_alive():
                    raise CommandError(f"sentinel died (exit code {cluster.sentinel.exitcode})")
                heartbeat.beat()
            cluster.stop()
        finally:
            heartbeat.gone()


class _Heartbeat:
    """This worker's row of integrations.WorkerHeartbeat, written every
    HEALTH_HEARTBEAT_SECONDS; a database that cannot be written to is said in the log
    and tried again at the next beat (the worker itself goes on)."""

    def __init__(self) -> None:
        self.worker = default_worker_id()
        self.started_at = timezone.now()
        self.every = settings.INTEGRATIONS["HEALTH_HEARTBEAT_SECONDS"]
        self.next_at = 0.0

    def beat(self) -> None:
        if time.monotonic() < self.next_at:
            return
        self.next_at = time.monotonic() + self.every
        try:
            worker_heartbeat(self.worker, started_at=self.started_at)
        except Exception as error:  # the worker goes on; the next beat tries again
            logger.warning("integrations.worker.heartbeat_failed error=%s", type(error).__name__)
            with contextlib.suppress(Exception):
                connections.close_all()

    def gone(self) -> None:
        with contextlib.suppress(DatabaseError):
            worker_gone(self.worker)
        connections.close_all()
