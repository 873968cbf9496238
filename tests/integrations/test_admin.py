import pytest
from django.urls import reverse

from integrations.choices import AttemptOutcome, EventStatus, JobStatus
from integrations.models import ApiCall, Attempt, Connection, InboundEvent, Integration, Job
from integrations.services import jobs as job_services
from tests.conftest import STRIPE_SECRET, make_flow, make_job, post_stripe, stripe_event
from tests.integrations.admin_forms import connection_form_data
from tests.support.upstream import Reply

pytestmark = pytest.mark.django_db

API_KEY = "sk_test_51TESTKEYabcdefghijkl"


def url(model, view="changelist", *args):
    return reverse(f"admin:integrations_{model}_{view}", args=args)


@pytest.fixture
def populated(client, integration, upstream, django_capture_on_commit_callbacks):
    make_flow(
        "pay",
        steps=[("write", "tests.call_upstream", {"reference": "event.reference"})],
        max_attempts=1,
    )
    upstream.queue(Reply(status=422, body={"error": "account closed"}))
    with django_capture_on_commit_callbacks(execute=True):
        post_stripe(client, integration.stripe, stripe_event())
    return Job.objects.get()


def test_every_admin_page_renders_without_secrets(admin_client, populated):
    job = populated
    event = job.event
    attempt = Attempt.objects.get(job=job)
    call = ApiCall.objects.get()
    connection = event.connection
    pages = [
        url("connection"),
        url("connection", "change", connection.pk),
        url("connection", "history", connection.pk),
        url("connection", "add"),
        url("integration"),
        url("flow"),
        url("flow", "change", job.flow.pk),
        url("mapping"),
        url("lookuptable"),
        url("inboundevent"),
        url("inboundevent", "change", event.pk),
        url("job"),
        url("job", "change", job.pk),
        url("attempt"),
        url("attempt", "change", attempt.pk),
        url("apicall"),
        url("apicall", "change", call.pk),
        "/admin/payments/order/",
        "/admin/payments/payment/",
        "/admin/payments/notification/",
        "/admin/customers/customerlink/",
    ]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert API_KEY not in html, page
        assert STRIPE_SECRET not in html, page
        assert "erp-token-123" not in html, page


def test_filters_and_search_find_one_order(admin_client, populated):
    for model in ("inboundevent", "job", "apicall"):
        response = admin_client.get(url(model), {"q": "ORD-1001"})
        assert response.status_code == 200
        assert response.context["cl"].result_count == 1, model
        response = admin_client.get(url(model), {"q": "ORD-404"})
        assert response.context["cl"].result_count == 0, model
    response = admin_client.get(url("job"), {"status__exact": "quarantined"})
    assert response.context["cl"].result_count == 1
    response = admin_client.get(url("inboundevent"), {"status__exact": "failed"})
    assert response.context["cl"].result_count == 1


def test_evidence_cannot_be_added_edited_or_deleted(admin_client, populated):
    job = populated
    assert admin_client.get(url("job", "add")).status_code == 403
    assert admin_client.get(url("job", "delete", job.pk)).status_code == 403
    response = admin_client.post(url("job", "change", job.pk), {"status": "succeeded"})
    assert response.status_code == 403
    job.refresh_from_db()
    assert job.status == JobStatus.QUARANTINED


def test_retry_action_adds_attempts_and_keeps_evidence(
    admin_client, populated, upstream, django_capture_on_commit_callbacks
):
    job = populated
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            url("job"), {"action": "retry_jobs", "_selected_action": [job.pk]}, follow=True
        )
    assert response.status_code == 200
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert list(job.attempt_log.values_list("outcome", flat=True)) == [
        AttemptOutcome.QUARANTINED,
        AttemptOutcome.OPERATOR,
        AttemptOutcome.SUCCEEDED,
    ]
    assert job.attempt_log.get(number=0).operator.username == "admin"
    assert ApiCall.objects.count() == 2
    assert job.event.status == EventStatus.PROCESSED


def test_discard_and_quarantine_actions(admin_client, integration):
    flow = make_flow("x", steps=[("a", "tests.echo", {})])
    waiting = make_job(flow, integration)
    admin_client.post(url("job"), {"action": "quarantine_jobs", "_selected_action": [waiting.pk]})
    waiting.refresh_from_db()
    assert waiting.status == JobStatus.QUARANTINED
    admin_client.post(url("job"), {"action": "discard_jobs", "_selected_action": [waiting.pk]})
    waiting.refresh_from_db()
    assert waiting.status == JobStatus.DISCARDED
    assert waiting.attempt_log.count() == 2


def test_refused_action_explains_and_changes_nothing(admin_client, integration):
    flow = make_flow("x", steps=[("a", "tests.echo", {})])
    job = make_job(flow, integration)
    job_services.job_run(job_id=job.pk)
    response = admin_client.post(
        url("job"), {"action": "discard_jobs", "_selected_action": [job.pk]}, follow=True
    )
    assert "job is succeeded; it cannot be discarded" in response.content.decode()
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.attempt_log.count() == 1


def test_replay_event_action_creates_linked_event(
    admin_client, populated, upstream, django_capture_on_commit_callbacks
):
    original = populated.event
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            url("inboundevent"), {"action": "replay_events", "_selected_action": [original.pk]}
        )
    replay = InboundEvent.objects.get(replay_of=original)
    assert replay.external_id == f"{original.external_id}#replay-1"
    assert replay.body == original.body
    assert replay.status == EventStatus.PROCESSED
    assert Job.objects.get(event=original).status == JobStatus.QUARANTINED  # evidence kept


def test_connection_form_sets_rotates_and_never_echoes_secrets(admin_client, stripe_connection):
    change = url("connection", "change", stripe_connection.pk)
    data = {
        "name": "stripe-test",
        "kind": "stripe",
        "environment": "prod",
        "base_url": "",
        "rate_limit_per_second": "10",
        "enabled": "on",
        "settings": "{}",
        "new_credentials": "api_key=sk_test_NEWKEY0000\nwebhook_note=",
        "add_webhook_secret": "whsec_brand_new",
        "retire_webhook_secrets": [],
        "change_reason": "rotate webhook secret",
    }
    from integrations.crypto import fingerprint

    data["retire_webhook_secrets"] = [fingerprint("whsec_test_retiring_secret")]
    response = admin_client.post(change, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    connection = Connection.objects.get(pk=stripe_connection.pk)
    assert connection.credential("api_key") == "sk_test_NEWKEY0000"
    assert connection.secret_list() == [STRIPE_SECRET, "whsec_brand_new"]
    assert connection.environment == "prod"
    page = admin_client.get(change).content.decode()
    for secret in ("sk_test_NEWKEY0000", "whsec_brand_new", STRIPE_SECRET):
        assert secret not in page
    history = admin_client.get(url("connection", "history", stripe_connection.pk)).content.decode()
    assert "sk_test_NEWKEY0000" not in history and "whsec_brand_new" not in history
    latest = connection.history.first()
    assert (latest.history_user.username, latest.history_change_reason) == (
        "admin",
        "rotate webhook secret",
    )


def test_test_connection_action_reports_result(admin_client, erp_connection, upstream):
    upstream.queue(Reply(status=200))
    response = admin_client.post(
        url("connection"),
        {"action": "test_connections", "_selected_action": [erp_connection.pk]},
        follow=True,
    )
    assert "erp-test: ERP answered HTTP 200" in [str(m) for m in response.context["messages"]]
    assert ApiCall.objects.get().operation == "test"


def test_flow_edit_marks_it_customized_with_history(admin_client):
    flow = make_flow("editable", steps=[("a", "tests.echo", {})])
    step = flow.steps.get()
    data = {
        "key": "editable",
        "name": "Edited",
        "description": "",
        "trigger_source": "stripe",
        "trigger_event": "charge.succeeded",
        "condition": "",
        "enabled": "on",
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "1",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        "steps-0-id": str(step.pk),
        "steps-0-flow": str(flow.pk),
        "steps-0-position": "1",
        "steps-0-name": "a",
        "steps-0-action": "tests.echo",
        "steps-0-mapping": "",
        "change_reason": "capture on charge instead",
    }
    response = admin_client.post(url("flow", "change", flow.pk), data)
    assert response.status_code == 302, response.content.decode()[:3000]
    flow.refresh_from_db()
    assert flow.customized is True
    assert flow.trigger_event == "charge.succeeded"
    record = flow.history.first()
    assert (record.history_user.username, record.history_change_reason) == (
        "admin",
        "capture on charge instead",
    )


def test_payloads_are_shown_with_client_secrets_masked(admin_client, client, integration):
    payload = stripe_event()
    payload["data"]["object"]["client_secret"] = "pi_123_secret_abcdef"
    assert post_stripe(client, integration.stripe, payload).status_code == 200
    event = InboundEvent.objects.get()
    assert "pi_123_secret_abcdef" in event.body  # the evidence is kept as signed
    page = admin_client.get(url("inboundevent", "change", event.pk)).content.decode()
    assert "pi_123_secret_abcdef" not in page
    assert "[redacted]" in page


# --- typed settings in the configuration forms ------------------------------------------------
def _connection_data(connection, **changes) -> dict:
    return connection_form_data(connection, **{"change_reason": "tune polling", **changes})


def test_connection_form_stores_typed_settings(admin_client, znode_connection):
    change = url("connection", "change", znode_connection.pk)
    assert "Settings of a Znode connection: store_domain, acting_user_id, auth" in (
        admin_client.get(change).content.decode()
    )
    data = _connection_data(
        znode_connection, settings='{"poll": "false", "poll_every_minutes": "3", "scope": null}'
    )
    response = admin_client.post(change, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    znode_connection.refresh_from_db()
    assert znode_connection.settings == {"poll": False, "poll_every_minutes": 3}
    assert znode_connection.history.first().history_change_reason == "tune polling"


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {"settings": '{"poll": "maybe", "timezone": "Moon/Base"}'},
            "settings",
            "setting 'poll': expected true or false (also yes/no, 1/0), got 'maybe'; "
            "setting 'timezone': expected IANA time zone such as Europe/Berlin or "
            "America/New_York, got 'Moon/Base'",
        ),
        (
            {"settings": '{"api_version": "2024-06-20"}'},
            "settings",
            "unknown setting 'api_version'; known settings: acting_user_id, auth, final_states, "
            "poll, poll_customers, poll_every_minutes, poll_overlap_seconds, poll_return_states, "
            "poll_returns, "
            "scope, store_domain, "
            "timeout_seconds, timezone, token_auth, token_url",
        ),
        (
            {"rate_limit_per_second": "0"},
            "rate_limit_per_second",
            "the rate limit must be requests per second above 0, got '0'",
        ),
    ],
)
def test_connection_form_shows_setting_errors_and_changes_nothing(
    admin_client, znode_connection, changes, field, message
):
    before = (znode_connection.settings, znode_connection.history.count())
    response = admin_client.post(
        url("connection", "change", znode_connection.pk),
        _connection_data(znode_connection, **changes),
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field] == [message]
    znode_connection.refresh_from_db()
    assert (znode_connection.settings, znode_connection.history.count()) == before
    assert znode_connection.rate_limit_per_second == 5


def test_connection_add_form_checks_settings_of_the_chosen_kind(admin_client):
    data = {
        "name": "stripe-new",
        "kind": "stripe",
        "environment": "dev",
        "base_url": "",
        "rate_limit_per_second": "5",
        "enabled": "on",
        "new_credentials": "",
        "add_webhook_secret": "",
        "change_reason": "",
        "settings": '{"max_network_retries": "20"}',
    }
    response = admin_client.post(url("connection", "add"), data)
    assert response.context["adminform"].form.errors["settings"] == [
        "setting 'max_network_retries': expected integer from 0 to 10, got '20'"
    ]
    assert not Connection.objects.filter(name="stripe-new").exists()
    response = admin_client.post(
        url("connection", "add"), {**data, "settings": '{"max_network_retries": "4"}'}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Connection.objects.get(name="stripe-new").settings == {"max_network_retries": 4}


def _integration_data(znode_connection, stripe_connection, settings: str) -> dict:
    return {
        "name": "shop",
        "znode": str(znode_connection.pk),
        "stripe": str(stripe_connection.pk),
        "erp": "",
        "enabled": "on",
        "settings": settings,
        "change_reason": "go live",
    }


def test_integration_form_checks_and_types_settings(
    admin_client, znode_connection, stripe_connection
):
    add = url("integration", "add")
    assert "Settings: collection_modes, manual_capture_payment_settings" in (
        admin_client.get(add).content.decode()
    )
    response = admin_client.post(
        add,
        _integration_data(
            znode_connection, stripe_connection, '{"collection_modes": {"7": "charge"}}'
        ),
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["settings"] == [
        "setting 'collection_modes': value of '7': expected one of adopt, customer, "
        "saved_method, got 'charge'"
    ]
    assert not Integration.objects.exists()
    response = admin_client.post(
        add,
        _integration_data(
            znode_connection,
            stripe_connection,
            '{"collection_modes": {"7": "adopt"}, "manual_capture_payment_settings": "8, 9",'
            ' "notify_customer": "no"}',
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    integration = Integration.objects.get(name="shop")
    assert integration.settings == {
        "collection_modes": {"7": "adopt"},
        "manual_capture_payment_settings": [8, 9],
        "notify_customer": False,
    }
    assert integration.history.get().history_change_reason == "go live"


# --- permissions of the operator actions -------------------------------------------------------
def _staff(django_user_model, name: str, *codenames: str):
    """A staff user holding exactly ``codenames`` (``app_label.codename``)."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(name, password="x", is_staff=True)
    for codename in codenames:
        app_label, _, code = codename.partition(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=code)
        )
    return user


def _evidence(upstream) -> tuple:
    """Everything an action could change: statuses, attempts, events, calls."""
    return (
        sorted(Job.objects.values_list("pk", "status")),
        Attempt.objects.count(),
        InboundEvent.objects.count(),
        ApiCall.objects.count(),
        len(upstream.requests),
    )


ACTIONS = [
    # (model, action, permission needed besides view)
    ("job", "retry_jobs", "integrations.operate_job"),
    ("job", "quarantine_jobs", "integrations.operate_job"),
    ("job", "discard_jobs", "integrations.operate_job"),
    ("inboundevent", "replay_events", "integrations.replay_event"),
    ("inboundevent", "retry_failed_jobs", "integrations.operate_job"),
    ("inboundevent", "skip_events", "integrations.operate_job"),
    ("connection", "test_connections", "integrations.test_connection"),
]


def _target(model, action, populated, integration):
    """A row on which ``action`` does something."""
    if model == "inboundevent":
        return populated.event
    if model == "connection":
        return integration.erp
    if action == "retry_jobs":
        return populated  # quarantined
    return make_job(make_flow("waiting", steps=[("a", "tests.echo", {})]), integration)


def _offered(client, model) -> set[str]:
    form = client.get(url(model)).context["action_form"]
    return {name for name, _ in form.fields["action"].choices} if form else set()


@pytest.mark.parametrize("holds", [False, True], ids=["view-only", "permitted"])
@pytest.mark.parametrize(("model", "action", "permission"), ACTIONS)
def test_each_admin_action_needs_its_permission(
    client,
    django_user_model,
    populated,
    integration,
    upstream,
    django_capture_on_commit_callbacks,
    model,
    action,
    permission,
    holds,
):
    """Rule: every operator action needs a model permission of its own, beyond view:
    integrations.operate_job (retry, quarantine, discard, also from an event),
    integrations.replay_event, integrations.test_connection. A user with view only is
    not offered the action, and posting it anyway changes nothing."""
    target = _target(model, action, populated, integration)
    granted = [f"integrations.view_{model}", *([permission] if holds else [])]
    user = _staff(django_user_model, "staff", *granted)
    client.force_login(user)
    assert (action in _offered(client, model)) is holds
    before = _evidence(upstream)
    upstream.queue(Reply(status=200))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url(model), {"action": action, "_selected_action": [target.pk]})
    assert response.status_code in (200, 302)
    if not holds:
        assert _evidence(upstream) == before
    elif model == "job":
        assert Attempt.objects.filter(job=target, operator=user).count() == 1
    elif action == "replay_events":
        assert InboundEvent.objects.filter(replay_of=target).count() == 1
    elif action == "retry_failed_jobs":
        assert Attempt.objects.filter(job=populated, operator=user).count() == 1
    elif action == "skip_events":
        target.refresh_from_db()
        assert target.status == "ignored" and "skipped by" in target.status_reason
    else:
        assert ApiCall.objects.filter(connection=target, operation="test").count() == 1


def test_every_admin_action_declares_a_permission_a_viewer_lacks(rf, django_user_model):
    """Least privilege for actions added later too: every custom action of every admin
    page names a permission (``permissions=[...]``), and a user who may view every
    model holds none of them."""
    from django.contrib import admin as django_admin
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer-of-all", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    request = rf.get("/admin/")
    request.user = django_user_model.objects.get(pk=viewer.pk)
    problems, checked = [], 0
    for model, model_admin in django_admin.site._registry.items():
        for action in model_admin.actions or ():
            func = getattr(model_admin, action) if isinstance(action, str) else action
            name = f"{model._meta.label}.{getattr(func, '__name__', action)}"
            permissions = getattr(func, "allowed_permissions", ())
            if not permissions:
                problems.append(f"{name} declares no permission")
            for permission in permissions:
                if getattr(model_admin, f"has_{permission}_permission")(request):
                    problems.append(f"{name}: a viewer holds {permission}")
            checked += 1
    assert checked >= 8 and problems == []


def test_every_admin_page_renders_in_the_theme(admin_client):
    """Each registered model's list page (and add page, where adding is allowed) answers
    200 in the admin theme, the stock apps' pages (users, groups, tasks) included."""
    from django.contrib import admin as django_admin

    problems = []
    for model, model_admin in django_admin.site._registry.items():
        opts = model._meta
        listing = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        if listing.status_code != 200 or b"unfold" not in listing.content:
            problems.append(f"{opts.label} list: {listing.status_code}")
        if model_admin.has_add_permission(listing.wsgi_request):
            add = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
            if add.status_code != 200:
                problems.append(f"{opts.label} add: {add.status_code}")
    assert problems == []
