"""Operator admin: configuration with history, read-only evidence with safe actions."""

from __future__ import annotations

import json

from axes.models import AccessAttempt
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django_q import admin as q_admin
from django_q.models import Failure, Success
from simple_history.admin import SimpleHistoryAdmin
from unfold.admin import ModelAdmin, TabularInline
from unfold.widgets import (
    UnfoldAdminCheckboxSelectMultipleWidget,
    UnfoldAdminPasswordWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
    UnfoldAdminURLInputWidget,
)

from integrations.choices import (
    ALWAYS_SENT_KINDS,
    AlertChannelKind,
    AlertKind,
    ErrorGroupState,
    JobStatus,
)
from integrations.kernel.exceptions import DataError, IntegrationError
from integrations.kernel.redaction import redact_data, redact_text
from integrations.models import (
    Alert,
    AlertChannel,
    AlertRule,
    ApiCall,
    Attempt,
    BundleImport,
    Connection,
    EnvironmentValue,
    ErrorGroup,
    Flow,
    FlowStep,
    FlowVersion,
    InboundEvent,
    Integration,
    Job,
    LookupTable,
    Mapping,
    MappingField,
    MappingSample,
    RoutedChange,
)
from integrations.services import error_groups as group_services
from integrations.services import jobs as job_services
from integrations.services.alerts import alert_send
from integrations.services.connections import (
    connection_test,
    credentials_merge,
    credentials_parse,
    credentials_reentry_problem,
    rate_limit,
)
from integrations.services.events import event_skip
from integrations.services.inbox import event_replay
from integrations.settings_schema import SettingsError, connection_schema, integration_schema


def pretty_json(value) -> str:
    """Indented JSON for operators, with anything credential-like masked (Stripe
    objects carry client secrets; the stored evidence itself is kept as it came)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return format_html('<pre style="white-space:pre-wrap">{}</pre>', redact_text(value))
    value = redact_data(value)
    return format_html(
        '<pre style="white-space:pre-wrap;max-height:40em;overflow:auto">{}</pre>',
        json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str),
    )


def admin_link(obj, label=None) -> str:
    if obj is None:
        return "-"
    url = reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label or str(obj))


def permission_check(codename: str):
    """``has_<name>_permission`` for an admin action: the user holds ``codename``
    (``app_label.codename``). Django offers an action declared with
    ``permissions=[<name>]`` only to such users and refuses it when posted by others."""

    def check(self, request) -> bool:
        return request.user.has_perm(codename)

    check.__doc__ = f"Holds {codename}."
    return check


class ReadOnlyAdmin(ModelAdmin):
    """Evidence is never added, edited or deleted by hand; actions call services."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(TabularInline):
    """Rows shown on their parent's page as evidence: nothing added, edited or deleted
    here (``fields`` are all read-only)."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields or ()

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# --- configuration: every save records who (middleware) and why (this field) ----------
class ChangeReasonForm(forms.ModelForm):
    change_reason = forms.CharField(
        required=False,
        max_length=100,
        widget=UnfoldAdminTextInputWidget,
        help_text="Why you are making this change; kept in the history with your name.",
    )


class AuditedAdmin(SimpleHistoryAdmin, ModelAdmin):
    form = ChangeReasonForm
    history_list_display = ("history_change_reason",)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        """A past version is shown to whoever may view the object; reverting to it (a
        POST, which saves) needs the change permission. simple-history only hides the
        button from view-only users and saves their POST anyway."""
        if request.method == "POST":
            obj = self.get_object(request, object_id)
            if obj is None or not self.has_change_permission(request, obj):
                raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    def save_model(self, request, obj, form, change):
        reason = (form.cleaned_data.get("change_reason") or "").strip()
        obj._change_reason = reason or ("edited in admin" if change else "created in admin")
        super().save_model(request, obj, form, change)


# --- connections ---------------------------------------------------------------------
class ConnectionForm(ChangeReasonForm):
    """Secrets are write-only: the form never renders a stored value, and a change of
    where they are sent (kind, base URL, token URL, ...) needs them re-entered."""

    base_url = forms.URLField(
        required=False,
        assume_scheme="https",
        widget=UnfoldAdminURLInputWidget,
        help_text=Connection._meta.get_field("base_url").help_text,
    )
    new_credentials = forms.CharField(
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3, "autocomplete": "off"}),
        help_text="KEY=VALUE per line. Listed keys are set or replaced; a key with an empty "
        "value is removed; other stored keys are kept. Values are never shown again. "
        "Changing the kind, base URL or token URL needs every stored key re-entered here.",
    )
    add_webhook_secret = forms.CharField(
        required=False,
        widget=UnfoldAdminPasswordWidget(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Adds a webhook secret; old ones stay valid until retired below.",
    )
    retire_webhook_secrets = forms.MultipleChoiceField(
        required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text="Secrets to stop accepting (shown by fingerprint).",
    )

    class Meta:
        model = Connection
        fields = [
            "name",
            "kind",
            "environment",
            "base_url",
            "rate_limit_per_second",
            "enabled",
            "settings",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from integrations.crypto import fingerprint

        secrets = self.instance.secret_list() if self.instance.pk else []
        self.fields["retire_webhook_secrets"].choices = [
            (fingerprint(s), f"•••{fingerprint(s)}") for s in secrets
        ]
        if self.instance.pk and "settings" in self.fields:
            names = ", ".join(connection_schema(self.instance.kind).names) or "none"
            self.fields["settings"].help_text = (
                f"JSON object. Settings of a {self.instance.get_kind_display()} connection: "
                f"{names} (types and defaults: manage.py settings_doc)."
            )

    def clean_new_credentials(self):
        try:
            return credentials_parse(self.cleaned_data.get("new_credentials") or "")
        except DataError as error:
            raise forms.ValidationError(error.message) from error

    def clean_rate_limit_per_second(self):
        try:
            return rate_limit(self.cleaned_data["rate_limit_per_second"])
        except DataError as error:
            raise forms.ValidationError(error.message) from error

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind") or self.instance.kind
        if "settings" in cleaned and kind:
            try:
                cleaned["settings"] = connection_schema(kind).validate(cleaned["settings"])
            except SettingsError as error:
                self.add_error("settings", error.message)
        # Against the stored row, not self.instance: reverting from the history builds
        # the form on the old version, whose base URL is not where the secrets go now.
        stored = Connection.objects.filter(pk=self.instance.pk).first()
        if stored is not None and "new_credentials" in cleaned:
            problem = credentials_reentry_problem(
                stored=stored,
                kind=kind,
                base_url=cleaned.get("base_url", stored.base_url),
                settings=cleaned.get("settings", stored.settings),
                entered=cleaned["new_credentials"],
            )
            if problem:
                self.add_error("new_credentials", problem)
        return cleaned

    def save(self, commit=True):
        from integrations.crypto import fingerprint

        connection = super().save(commit=False)
        if changes := self.cleaned_data.get("new_credentials"):
            connection.credentials = credentials_merge(connection.credentials, changes)
        retire = set(self.cleaned_data.get("retire_webhook_secrets") or [])
        secrets = [s for s in connection.secret_list() if fingerprint(s) not in retire]
        if new := (self.cleaned_data.get("add_webhook_secret") or "").strip():
            secrets.append(new)
        connection.webhook_secrets = secrets
        if commit:
            connection.save()
        return connection


@admin.register(Connection)
class ConnectionAdmin(AuditedAdmin):
    form = ConnectionForm
    list_display = ("name", "kind", "environment", "enabled", "base_url", "updated_at")
    list_filter = ("kind", "environment", "enabled")
    search_fields = ("name", "base_url")
    readonly_fields = ("webhook_url", "stored_credentials", "stored_webhook_secrets", "url_token")
    history_list_display = ("history_change_reason", "enabled", "environment", "base_url")
    actions = ["test_connections"]
    has_test_permission = permission_check("integrations.test_connection")
    fieldsets = (
        (None, {"fields": ("name", "kind", "environment", "base_url", "enabled", "settings")}),
        ("Limits", {"fields": ("rate_limit_per_second",)}),
        (
            "Secrets (encrypted at rest, write-only)",
            {
                "fields": (
                    "stored_credentials",
                    "new_credentials",
                    "stored_webhook_secrets",
                    "add_webhook_secret",
                    "retire_webhook_secrets",
                )
            },
        ),
        ("Webhook endpoint", {"fields": ("webhook_url", "url_token")}),
        ("Audit", {"fields": ("change_reason",)}),
    )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        from integrations.services.polling import poll_schedules_sync

        poll_schedules_sync()  # a Znode store gained, lost or changed its poller

    @admin.display(description="Webhook URL")
    def webhook_url(self, obj):
        return obj.webhook_path if obj.pk else "(saved connections get a URL)"

    @admin.display(description="Stored credentials")
    def stored_credentials(self, obj):
        return obj.credentials.describe() if obj.pk else "-"

    @admin.display(description="Active webhook secrets")
    def stored_webhook_secrets(self, obj):
        return obj.webhook_secrets.describe() if obj.pk else "-"

    @admin.action(description="Test connection (one authenticated call)", permissions=["test"])
    def test_connections(self, request, queryset):
        for connection in queryset:
            result = connection_test(connection=connection)
            level = messages.SUCCESS if result.ok else messages.ERROR
            self.message_user(request, f"{connection.name}: {result.message}", level)


class IntegrationForm(ChangeReasonForm):
    """Settings are checked against the schema the domain apps registered."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "settings" in self.fields:
            self.fields["settings"].help_text = (
                f"JSON object. Settings: {', '.join(integration_schema().names)} "
                "(types and defaults: manage.py settings_doc)."
            )

    def clean_settings(self):
        try:
            return integration_schema().validate(self.cleaned_data.get("settings"))
        except SettingsError as error:
            raise forms.ValidationError(error.message) from error


@admin.register(Integration)
class IntegrationAdmin(AuditedAdmin):
    form = IntegrationForm
    list_display = ("name", "znode", "stripe", "erp", "enabled")
    list_filter = ("enabled",)
    search_fields = ("name",)

    def get_readonly_fields(self, request, obj=None):
        # The name is the integration's identity outside: in its idempotency keys and
        # in the metadata of the Stripe objects it made. Renaming would orphan them.
        fields = tuple(super().get_readonly_fields(request, obj))
        return (*fields, "name") if obj is not None else fields


# --- flows and mappings: the designer ----------------------------------------------------
def _action_choices(current: str = "") -> list[tuple[str, str]]:
    from integrations.registry import all_actions

    choices = [
        (key, f"{key} — {spec.description}" if spec.description else key)
        for key, spec in sorted(all_actions().items())
    ]
    if current and current not in dict(choices):
        choices.insert(0, (current, f"{current} (not registered)"))
    return choices


class FlowStepForm(forms.ModelForm):
    """A step's action is picked from the registry (its inputs are listed above)."""

    class Meta:
        model = FlowStep
        fields = ("position", "name", "action", "enabled", "mapping")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = self.instance.action if self.instance and self.instance.pk else ""
        self.fields["action"] = forms.ChoiceField(
            choices=_action_choices(current),
            help_text=FlowStep._meta.get_field("action").help_text,
            widget=forms.Select(attrs={"class": "border rounded px-2 py-1"}),
        )


def _problems_error(problems) -> ValidationError:
    return ValidationError(
        ["This flow would fail, so it is not saved:", *(str(p) for p in problems)]
    )


class FlowStepFormSet(forms.BaseInlineFormSet):
    """A flow is checked whole before it is saved (its fields as typed, its steps as
    in this form, each step's mapping as stored): one that would fail is refused with
    every reason."""

    def clean(self):
        super().clean()
        if any(form.errors for form in self.forms):
            return
        from integrations.services.flow_design import flow_problems
        from integrations.services.flow_versions import mapping_definition

        flow = self.instance
        steps = []
        for form in sorted(
            (f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")),
            key=lambda f: f.cleaned_data.get("position") or 0,
        ):
            data = form.cleaned_data
            steps.append(
                {
                    "name": data.get("name") or "",
                    "action": data.get("action") or "",
                    "enabled": bool(data.get("enabled")),
                    "mapping": mapping_definition(data["mapping"]) if data.get("mapping") else None,
                }
            )
        positions = [
            f.cleaned_data.get("position")
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        if len(set(positions)) != len(positions):
            raise ValidationError("Two steps have the same position.")
        problems = flow_problems(
            {
                "key": flow.key,
                "trigger_source": flow.trigger_source,
                "trigger_event": flow.trigger_event,
                "condition": flow.condition,
                "steps": steps,
            }
        )
        if problems:
            raise _problems_error(problems)


class FlowStepInline(TabularInline):
    model = FlowStep
    form = FlowStepForm
    formset = FlowStepFormSet
    extra = 0
    fields = ("position", "name", "action", "enabled", "mapping")


class CustomizedOnSaveMixin:
    """An operator's save marks the row customized so upgrades leave it alone."""

    def save_model(self, request, obj, form, change):
        obj.customized = True
        super().save_model(request, obj, form, change)


@admin.register(Flow)
class FlowAdmin(CustomizedOnSaveMixin, AuditedAdmin):
    list_display = ("key", "name", "trigger_source", "trigger_event", "enabled", "customized")
    list_filter = ("trigger_source", "enabled", "customized")
    search_fields = ("key", "name", "trigger_event")
    readonly_fields = ("shipped_version", "customized")
    inlines = [FlowStepInline]
    history_list_display = ("history_change_reason", "enabled", "trigger_event")
    change_form_template = "admin/integrations/flow/change_form.html"
    actions = ("export_bundle",)

    @admin.action(
        description="Export the selected flows as a bundle (JSON: their mappings and lookup "
        "tables, never a connection or a secret)",
        permissions=["change"],  # promoting flows is the integration developers' work
    )
    def export_bundle(self, request, queryset):
        import json

        from django.conf import settings
        from django.http import HttpResponse

        from integrations.services.bundles import bundle_export

        environment = settings.INTEGRATIONS["ENVIRONMENT_NAME"]
        bundle = bundle_export(sorted(queryset.values_list("key", flat=True)), source=environment)
        response = HttpResponse(
            json.dumps(bundle, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
            content_type="application/json",
        )
        name = f"flows-{environment}-{bundle['hash'][:12]}.json"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        flow = self.get_object(request, object_id)
        extra = {"designer": _designer(flow)} if flow is not None else {}
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def save_related(self, request, form, formsets, change):
        """Once the steps are saved, the flow as it is now is a version (who, why)."""
        super().save_related(request, form, formsets, change)
        from integrations.services.flow_versions import flow_version_save

        flow_version_save(
            form.instance,
            user=request.user.get_username(),
            reason=(form.cleaned_data.get("change_reason") or "").strip() or "edited in admin",
        )


def _designer(flow: Flow) -> dict:
    """What the designer draws: the flow as stored, its problems, the actions."""
    from django.urls import reverse

    from integrations.registry import all_actions
    from integrations.services.flow_design import action_inputs, flow_problems
    from integrations.services.flow_versions import flow_definition

    definition = flow_definition(flow)
    actions = all_actions()
    steps = []
    mapping_ids = dict(
        FlowStep.objects.filter(flow=flow, mapping__isnull=False).values_list("name", "mapping_id")
    )
    for step in definition["steps"]:
        spec = actions.get(step["action"])
        mapping = step["mapping"] or {}
        steps.append(
            {
                **step,
                "description": spec.description if spec else "not a registered action",
                "mapping": mapping.get("key", ""),
                "rows": mapping.get("fields", []),
                "mapping_url": reverse(
                    "admin:integrations_mapping_change", args=[mapping_ids[step["name"]]]
                )
                if step["name"] in mapping_ids
                else "",
            }
        )
    latest = flow.versions.order_by("-number").values_list("number", flat=True).first()
    return {
        "definition": definition,
        "steps": steps,
        "problems": [str(p) for p in flow_problems(definition)],
        "version": f"v{latest}" if latest else "",
        "actions": [
            {"key": key, "description": spec.description, "inputs": action_inputs(spec)}
            for key, spec in sorted(actions.items())
        ],
        "versions_url": reverse("admin:integrations_flowversion_changelist")
        + f"?flow__id__exact={flow.pk}",
        "lookups_url": reverse("admin:integrations_lookuptable_changelist"),
    }


class MappingFieldFormSet(forms.BaseInlineFormSet):
    """The rows are checked before they are saved: each row on its own (expression,
    transform, lookup table), then every flow whose step uses the mapping, with these
    rows (an input the action does not take, a required input left unmapped)."""

    def rules(self):
        from integrations.mapping import Rule

        return [
            Rule(
                target=f.cleaned_data.get("target") or "",
                source=f.cleaned_data.get("source") or "",
                transform=f.cleaned_data.get("transform") or "",
                default=f.cleaned_data.get("default"),
                required=bool(f.cleaned_data.get("required")),
            )
            for f in sorted(
                (f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")),
                key=lambda f: f.cleaned_data.get("position") or 0,
            )
        ]

    def clean(self):
        super().clean()
        if any(form.errors for form in self.forms) or not self.instance.pk:
            return
        from integrations.services.flow_design import flow_problems
        from integrations.services.flow_versions import flow_definition, rule_row

        rows = [rule_row(r) for r in self.rules()]
        problems = []
        for flow in Flow.objects.filter(steps__mapping=self.instance).distinct():
            definition = flow_definition(flow)
            for step in definition["steps"]:
                if (step["mapping"] or {}).get("key") == self.instance.key:
                    step["mapping"] = {"key": self.instance.key, "fields": rows}
            problems += [f"flow {flow.key}: {p}" for p in flow_problems(definition)]
        if problems:
            raise ValidationError(["These rows would make a flow fail:", *problems])


class MappingFieldInline(TabularInline):
    model = MappingField
    formset = MappingFieldFormSet
    extra = 0
    fields = ("position", "target", "source", "transform", "default", "required")


@admin.register(Mapping)
class MappingAdmin(CustomizedOnSaveMixin, AuditedAdmin):
    list_display = ("key", "description", "customized")
    search_fields = ("key", "description")
    readonly_fields = ("customized",)
    inlines = [MappingFieldInline]
    change_form_template = "admin/integrations/mapping/change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        from django.urls import reverse

        from integrations.services.flow_design import mapping_samples

        mapping = self.get_object(request, object_id)
        extra = {}
        if mapping is not None:
            extra = {
                "preview_url": reverse("integrations-mapping-preview", args=[mapping.pk]),
                "suggest_url": reverse("integrations-mapping-suggest", args=[mapping.pk]),
                "samples": mapping_samples(mapping),
                "used_by": FlowStep.objects.filter(mapping=mapping).select_related("flow"),
            }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def save_related(self, request, form, formsets, change):
        """The flows whose steps use the mapping get a version with the new rows."""
        super().save_related(request, form, formsets, change)
        from integrations.services.flow_versions import flow_version_save

        reason = (form.cleaned_data.get("change_reason") or "").strip() or "mapping edited in admin"
        for flow in Flow.objects.filter(steps__mapping=form.instance).distinct():
            flow_version_save(flow, user=request.user.get_username(), reason=reason)


@admin.register(LookupTable)
class LookupTableAdmin(AuditedAdmin):
    list_display = ("key", "description")
    search_fields = ("key",)


@admin.register(MappingSample)
class MappingSampleAdmin(AuditedAdmin):
    list_display = ("mapping", "name", "created_by", "created_at")
    list_filter = ("mapping",)
    search_fields = ("name", "mapping__key")
    readonly_fields = ("created_by", "created_at")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user.get_username()[:150]
        super().save_model(request, obj, form, change)


@admin.register(EnvironmentValue)
class EnvironmentValueAdmin(AuditedAdmin):
    list_display = ("name", "value", "description")
    search_fields = ("name", "description")


@admin.register(FlowVersion)
class FlowVersionAdmin(ReadOnlyAdmin):
    list_display = ("flow", "number", "created_at", "created_by", "reason")
    list_filter = ("flow",)
    search_fields = ("flow__key", "created_by", "reason")
    list_select_related = ("flow",)
    fields = ("flow", "number", "created_at", "created_by", "reason", "changes", "definition_json")
    readonly_fields = fields
    actions = ("revert",)

    @admin.display(description="Changes from the version before")
    def changes(self, obj):
        from integrations.services.flow_versions import versions_diff

        before = (
            FlowVersion.objects.filter(flow_id=obj.flow_id, number__lt=obj.number)
            .order_by("-number")
            .values_list("definition", flat=True)
            .first()
        )
        lines = versions_diff(before, obj.definition) or ["(no change)"]
        return format_html_join("", "<div>{}</div>", ((line,) for line in lines))

    @admin.display(description="Definition")
    def definition_json(self, obj):
        return pretty_json(obj.definition)

    has_revert_permission = permission_check("integrations.change_flow")

    @admin.action(
        description="Revert the flow to this version (its steps and mappings as they were; "
        "recorded as a new version)",
        permissions=["revert"],
    )
    def revert(self, request, queryset):
        from integrations.services.flow_versions import flow_version_revert

        if queryset.count() != 1:
            self.message_user(request, "Choose one version to revert to.", messages.WARNING)
            return
        version = queryset.get()
        try:
            made = flow_version_revert(version, user=request.user.get_username())
        except IntegrationError as error:
            self.message_user(request, f"not reverted: {error}", messages.ERROR)
            return
        self.message_user(
            request,
            f"{version.flow.key} is as in v{version.number} again (now v{made.number}).",
            messages.SUCCESS,
        )


@admin.register(BundleImport)
class BundleImportAdmin(ReadOnlyAdmin):
    list_display = ("name", "digest", "imported_by", "imported_at")
    search_fields = ("name", "digest", "imported_by")
    fields = ("name", "digest", "imported_by", "imported_at", "summary_lines")
    readonly_fields = fields
    change_list_template = "admin/integrations/bundleimport/change_list.html"
    BUNDLE_MAX_BYTES = 5_000_000

    def get_urls(self):
        from django.urls import path

        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="integrations_bundleimport_import",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request):
        """Upload a bundle, see its plan (a diff against this environment), import it.
        Needs ``integrations.import_bundle``."""
        import json

        from django.conf import settings
        from django.shortcuts import redirect, render

        from integrations.services.bundles import bundle_apply, bundle_plan

        if not request.user.has_perm("integrations.import_bundle"):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Import a flow bundle",
            "environment": settings.INTEGRATIONS["ENVIRONMENT_NAME"],
        }
        if request.method == "POST":
            upload = request.FILES.get("file")
            if upload is not None:
                if upload.size > self.BUNDLE_MAX_BYTES:
                    context["error"] = "The file is larger than a bundle can be (5 MB)."
                    return render(request, "admin/integrations/bundle_import.html", context)
                text, name = upload.read().decode("utf-8", errors="replace"), upload.name
            else:
                text = request.POST.get("bundle", "")[: self.BUNDLE_MAX_BYTES]
                name = request.POST.get("name", "")[:200] or "bundle.json"
            try:
                bundle = json.loads(text)
                if request.POST.get("apply"):
                    plan = bundle_apply(bundle, name=name, user=request.user.get_username())
                    self.message_user(
                        request,
                        f"Bundle {name} imported: {len(plan.changed)} change(s).",
                        messages.SUCCESS,
                    )
                    return redirect("admin:integrations_bundleimport_changelist")
                context.update(
                    plan=bundle_plan(bundle),
                    bundle_text=text,
                    name=name,
                    source=bundle.get("source", ""),
                )
            except ValueError as error:
                context["error"] = f"Not a JSON file: {error}"
            except DataError as error:
                context["error"] = error.message
        return render(request, "admin/integrations/bundle_import.html", context)

    @admin.display(description="What it changed")
    def summary_lines(self, obj):
        return format_html('<pre style="white-space:pre-wrap">{}</pre>', "\n".join(obj.summary))


# --- evidence: events, jobs, attempts, API calls ---------------------------------------
class JobInline(TabularInline):
    model = Job
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("flow", "integration", "status", "attempts", "next_attempt_at", "last_error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class OperatesJobs:
    """Retry, quarantine and discard need ``integrations.operate_job``."""

    has_operate_permission = permission_check("integrations.operate_job")


@admin.register(InboundEvent)
class InboundEventAdmin(OperatesJobs, ReadOnlyAdmin):
    list_display = (
        "received_at",
        "connection",
        "event_type",
        "external_id",
        "reference",
        "source",
        "status",
        "short_reason",
        "deliveries",
    )
    list_filter = ("status", "connection", "source", "event_type", "received_at")
    search_fields = ("=external_id", "=reference", "=object_id")
    date_hierarchy = "received_at"
    list_select_related = ("connection",)
    inlines = [JobInline]
    actions = ["replay_events", "retry_failed_jobs", "skip_events"]
    exclude = ("body", "headers", "duplicate_of")
    readonly_fields = ("pretty_body", "pretty_headers", "replay_of_link", "duplicate_of_link")
    has_replay_permission = permission_check("integrations.replay_event")

    def get_queryset(self, request):
        # Bodies can be large; the list never shows them.
        qs = super().get_queryset(request)
        return qs if request.resolver_match.url_name.endswith("change") else qs.defer("body")

    @admin.display(description="Body")
    def pretty_body(self, obj):
        return pretty_json(obj.body)

    @admin.display(description="Headers (secrets redacted)")
    def pretty_headers(self, obj):
        return pretty_json(obj.headers)

    @admin.display(description="Replay of")
    def replay_of_link(self, obj):
        return admin_link(obj.replay_of)

    @admin.display(description="Duplicate of")
    def duplicate_of_link(self, obj):
        """The earlier event whose jobs already cover this change (status duplicate)."""
        return admin_link(obj.duplicate_of)

    @admin.display(description="Reason", ordering="status_reason")
    def short_reason(self, obj):
        reason = obj.status_reason or ""
        return reason if len(reason) <= 90 else f"{reason[:89]}…"

    @admin.action(
        description="Replay event (runs its flows again as a new event)", permissions=["replay"]
    )
    def replay_events(self, request, queryset):
        for event in queryset:
            replay = event_replay(event=event, operator=request.user)
            self.message_user(request, f"{event}: replayed as event {replay.pk}")

    @admin.action(description="Retry the event's failed jobs", permissions=["operate"])
    def retry_failed_jobs(self, request, queryset):
        count = 0
        for job in Job.objects.filter(
            event__in=queryset, status__in=[JobStatus.QUARANTINED, JobStatus.RETRYING]
        ):
            job_services.job_requeue(job=job, operator=request.user, note="via event")
            count += 1
        self.message_user(request, f"{count} job(s) queued for retry")

    @admin.action(
        description="Skip event (discards its unfinished jobs; evidence is kept)",
        permissions=["operate"],
    )
    def skip_events(self, request, queryset):
        """For an event that cannot be processed (e.g. one whose routing failed): it is
        marked ignored with who skipped it; replay it instead to run it again."""
        for event in queryset:
            try:
                event_skip(event=event, operator=request.user, note="skipped in the admin")
            except DataError as error:
                self.message_user(request, f"{event}: {error}", level=messages.WARNING)
            else:
                self.message_user(request, f"{event}: skipped")


@admin.register(RoutedChange)
class RoutedChangeAdmin(ReadOnlyAdmin):
    """The last change per external object that the inbox turned into jobs; later
    events with the same fingerprint are stored as duplicates of it."""

    list_display = ("object_key", "connection", "event_link", "created_event_link", "routed_at")
    list_filter = ("connection",)
    search_fields = ("=object_key",)
    list_select_related = ("connection",)
    readonly_fields = ("event_link", "created_event_link")
    exclude = ("event", "created_event")

    @staticmethod
    def _event_link(event_id: int | None) -> str:
        # By id: loading the events would fetch their bodies for every row.
        if not event_id:
            return "-"
        url = reverse("admin:integrations_inboundevent_change", args=[event_id])
        return format_html('<a href="{}">event {}</a>', url, event_id)

    @admin.display(description="Last routed event")
    def event_link(self, obj):
        return self._event_link(obj.event_id)

    @admin.display(description="Creation routed by")
    def created_event_link(self, obj):
        return self._event_link(obj.created_event_id)


class AttemptInline(TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    show_change_link = True
    fields = (
        "number",
        "outcome",
        "step",
        "started_at",
        "duration_ms",
        "error_class",
        "error_message",
        "operator",
        "note",
    )
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class ApiCallInline(TabularInline):
    model = ApiCall
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("created_at", "connection", "method", "url", "status_code", "duration_ms", "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class RunJobActions(OperatesJobs):
    def _apply(self, request, queryset, service, verb):
        done, refused = 0, []
        for job in queryset:
            try:
                service(job=job, operator=request.user, note=f"via admin by {request.user}")
                done += 1
            except DataError as exc:
                refused.append(f"job {job.pk}: {exc.message}")
        if done:
            self.message_user(request, f"{done} job(s) {verb}")
        for message in refused:
            self.message_user(request, message, messages.WARNING)


@admin.register(Job)
class JobAdmin(RunJobActions, ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "flow",
        "reference",
        "status",
        "attempts",
        "next_attempt_at",
        "short_error",
    )
    list_filter = ("status", "flow", "integration", "event__connection", "created_at")
    search_fields = ("=reference", "=event__external_id", "=event__object_id")
    # ?error_group__id__exact=N: the jobs of one group (its page links here).
    date_hierarchy = "created_at"
    list_select_related = ("flow",)
    inlines = [AttemptInline, ApiCallInline]
    actions = ["retry_jobs", "quarantine_jobs", "discard_jobs"]
    exclude = ("context", "step_outputs", "error_group")
    readonly_fields = ("event_link", "error_group_link", "pretty_context", "pretty_step_outputs")

    @admin.display(description="Error group")
    def error_group_link(self, obj):
        """The kind of the job's last failure, with every job that failed alike."""
        return admin_link(obj.error_group)

    @admin.display(description="Error")
    def short_error(self, obj):
        return (obj.last_error or "")[:120]

    @admin.display(description="Event")
    def event_link(self, obj):
        return admin_link(obj.event)

    @admin.display(description="Context (input of the mappings)")
    def pretty_context(self, obj):
        return pretty_json(obj.context)

    @admin.display(description="Outputs of finished steps")
    def pretty_step_outputs(self, obj):
        return pretty_json(obj.step_outputs)

    @admin.action(
        description="Retry (resumes at the first unfinished step)", permissions=["operate"]
    )
    def retry_jobs(self, request, queryset):
        self._apply(request, queryset, job_services.job_requeue, "queued for retry")

    @admin.action(description="Quarantine (stop retrying)", permissions=["operate"])
    def quarantine_jobs(self, request, queryset):
        self._apply(request, queryset, job_services.job_quarantine, "quarantined")

    @admin.action(description="Discard (give up; evidence is kept)", permissions=["operate"])
    def discard_jobs(self, request, queryset):
        self._apply(request, queryset, job_services.job_discard, "discarded")


@admin.register(Attempt)
class AttemptAdmin(ReadOnlyAdmin):
    list_display = ("job", "number", "outcome", "step", "started_at", "duration_ms", "error_class")
    list_filter = ("outcome", "started_at")
    search_fields = ("=job__reference", "error_message")
    list_select_related = ("job",)


@admin.register(ApiCall)
class ApiCallAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "connection",
        "operation",
        "method",
        "url",
        "status_code",
        "duration_ms",
        "reference",
    )
    list_filter = ("connection", "method", "status_code", "created_at")
    search_fields = ("=reference", "=idempotency_key", "url")
    date_hierarchy = "created_at"
    list_select_related = ("connection",)
    exclude = ("request_headers", "request_body", "response_body")
    readonly_fields = ("pretty_request_headers", "pretty_request_body", "pretty_response_body")

    @admin.display(description="Request headers (redacted)")
    def pretty_request_headers(self, obj):
        return pretty_json(obj.request_headers)

    @admin.display(description="Request body (redacted)")
    def pretty_request_body(self, obj):
        return pretty_json(obj.request_body)

    @admin.display(description="Response body (redacted)")
    def pretty_response_body(self, obj):
        return pretty_json(obj.response_body)


# --- django-q2's task pages: resubmitting a task is an operator's action too ------------
class _OperatedTasks:
    actions = ["resubmit_tasks"]
    has_operate_permission = permission_check("integrations.operate_job")

    @admin.action(description="Resubmit selected tasks to queue", permissions=["operate"])
    def resubmit_tasks(self, request, queryset):
        return q_admin.resubmit_task(self, request, queryset)


for _model, _stock in ((Success, q_admin.TaskAdmin), (Failure, q_admin.FailAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(
        _model, type(f"Operated{_stock.__name__}", (_OperatedTasks, _stock, ModelAdmin), {})
    )


# --- login throttling (django-axes) ------------------------------------------------------
@admin.register(AccessAttempt)
class AccessAttemptAdmin(ModelAdmin):
    """Usernames and addresses with failed logins: deleting a row unlocks that pair
    (axes' own admin is off: its bulk action declares no permission)."""

    list_display = ("username", "ip_address", "failures_since_start", "attempt_time")
    list_filter = ("attempt_time",)
    search_fields = ("username", "ip_address")
    fields = ("username", "ip_address", "failures_since_start", "attempt_time", "user_agent")
    readonly_fields = fields
    ordering = ("-attempt_time",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# --- error groups --------------------------------------------------------------------------
class ErrorGroupForm(forms.ModelForm):
    """Triage only: the state, the assignee and why (kept in the group's history)."""

    note = forms.CharField(
        required=False,
        max_length=80,
        widget=UnfoldAdminTextInputWidget,
        help_text="Why (kept in the group's history with your name).",
    )
    # What the page showed: a field left as shown is not written back (the group may
    # have reopened, or resolved itself, since the page was opened).
    shown_state = forms.CharField(
        required=False, widget=forms.HiddenInput, help_text="The state the page showed."
    )
    shown_assignee = forms.CharField(
        required=False, widget=forms.HiddenInput, help_text="The assignee the page showed."
    )

    class Meta:
        model = ErrorGroup
        fields = ["state", "assignee"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["shown_state"].initial = self.instance.state
        self.fields["shown_assignee"].initial = self.instance.assignee_id or ""

    def edits(self) -> dict:
        """The triage the operator changed on the page: state and/or assignee."""
        data, out = self.cleaned_data, {}
        if data["state"] != data.get("shown_state"):
            out["state"] = data["state"]
        assignee = data["assignee"]
        if str(assignee.pk if assignee else "") != (data.get("shown_assignee") or ""):
            out["assignee"] = assignee
        return out


def _filtered_jobs_url(**lookups) -> str:
    from urllib.parse import urlencode

    return f"{reverse('admin:integrations_job_changelist')}?{urlencode(lookups)}"


@admin.register(ErrorGroup)
class ErrorGroupAdmin(OperatesJobs, SimpleHistoryAdmin, ModelAdmin):
    """Failures of one kind. Triage (state, assignee) needs
    ``integrations.triage_errorgroup``; retrying or discarding its jobs at once needs
    ``integrations.operate_job``. Nothing else is edited by hand."""

    form = ErrorGroupForm
    list_display = (
        "id",
        "state",
        "flow",
        "step",
        "short_message",
        "out_of_retries",
        "waiting_retry",
        "occurrences",
        "first_seen_at",
        "last_seen_at",
        "assignee",
    )
    list_filter = ("state", "flow", "assignee", "last_seen_at")
    search_fields = ("message", "sample", "error_class")
    list_select_related = ("flow", "assignee")
    actions = [
        "retry_groups",
        "discard_groups",
        "acknowledge_groups",
        "resolve_groups",
        "ignore_groups",
        "reopen_groups",
        "assign_to_me",
    ]
    history_list_display = ("history_change_reason", "state", "assignee")
    fieldsets = (
        ("Triage", {"fields": ("state", "assignee", "note", "shown_state", "shown_assignee")}),
        (
            "What fails",
            {"fields": ("flow", "step", "error_class", "message", "sample", "fix_and_redrive")},
        ),
        (
            "How often",
            {
                "fields": (
                    "jobs_by_status",
                    "affected_orders",
                    "occurrences",
                    "first_seen_at",
                    "last_seen_at",
                    "resolved_at",
                    "reopened",
                    "alerted_at",
                )
            },
        ),
    )
    readonly_fields = (
        "flow",
        "step",
        "error_class",
        "message",
        "sample",
        "fix_and_redrive",
        "jobs_by_status",
        "affected_orders",
        "occurrences",
        "first_seen_at",
        "last_seen_at",
        "resolved_at",
        "reopened",
        "alerted_at",
    )
    has_triage_permission = permission_check("integrations.triage_errorgroup")

    @admin.display(description="Fix and re-drive")
    def fix_and_redrive(self, obj):
        from django.urls import reverse

        if obj is None or not obj.step:
            return "—"
        return format_html(
            '<a href="{}">Try a fix of step {}\'s mapping on these jobs, then retry them</a>',
            reverse("integrations-redrive", args=[obj.pk]),
            obj.step,
        )

    def get_queryset(self, request):
        from django.db.models import Count, Q

        return (
            super()
            .get_queryset(request)
            .annotate(
                _out=Count("jobs", filter=Q(jobs__status=JobStatus.QUARANTINED)),
                _waiting=Count("jobs", filter=Q(jobs__status=JobStatus.RETRYING)),
            )
        )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return self.has_triage_permission(request)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        """A past version is shown, never restored (its counts are history)."""
        if request.method == "POST":
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    def save_model(self, request, obj, form, change):
        """Only what the operator changed on the page: one opened before the group
        reopened (or resolved itself) must not set its state back."""
        group_services.error_group_triage(
            group=obj,
            operator=request.user,
            note=form.cleaned_data.get("note") or "in the admin",
            **form.edits(),
        )

    @admin.display(description="Message", ordering="message")
    def short_message(self, obj):
        return obj.message if len(obj.message) <= 100 else f"{obj.message[:99]}…"

    @admin.display(description="Out of retries", ordering="_out")
    def out_of_retries(self, obj):
        return obj._out

    @admin.display(description="Waiting to retry", ordering="_waiting")
    def waiting_retry(self, obj):
        return obj._waiting

    @admin.display(description="Jobs by status")
    def jobs_by_status(self, obj):
        """Each status links to those jobs of the group."""
        counts = group_services.error_group_jobs_by_status([obj.pk])[obj.pk]
        if not counts:
            return "-"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            [
                (
                    _filtered_jobs_url(error_group__id__exact=obj.pk, status__exact=status),
                    f"{JobStatus(status).label}: {n}",
                )
                for status, n in sorted(counts.items())
            ],
        )

    @admin.display(description="Orders affected (failing jobs)")
    def affected_orders(self, obj):
        """Each order links to its jobs (search by order number)."""
        orders = group_services.error_group_orders(obj, limit=51)
        if not orders:
            return "-"
        more = " …" if len(orders) > 50 else ""
        links = format_html_join(
            ", ", '<a href="{}">{}</a>', ((_filtered_jobs_url(q=o), o) for o in orders[:50])
        )
        return format_html("{}{}", links, more)

    def _triage(self, request, queryset, state: str, verb: str):
        for group in queryset:
            group_services.error_group_triage(
                group=group, operator=request.user, state=state, note="in the admin"
            )
        self.message_user(request, f"{queryset.count()} group(s) {verb}")

    @admin.action(description="Acknowledge (someone is on it)", permissions=["triage"])
    def acknowledge_groups(self, request, queryset):
        self._triage(request, queryset, ErrorGroupState.ACKNOWLEDGED, "acknowledged")

    @admin.action(description="Resolve (reopens if the error comes back)", permissions=["triage"])
    def resolve_groups(self, request, queryset):
        self._triage(request, queryset, ErrorGroupState.RESOLVED, "resolved")

    @admin.action(description="Ignore (no alerts)", permissions=["triage"])
    def ignore_groups(self, request, queryset):
        self._triage(request, queryset, ErrorGroupState.IGNORED, "ignored")

    @admin.action(description="Reopen", permissions=["triage"])
    def reopen_groups(self, request, queryset):
        self._triage(request, queryset, ErrorGroupState.OPEN, "reopened")

    @admin.action(description="Assign to me", permissions=["triage"])
    def assign_to_me(self, request, queryset):
        for group in queryset:
            group_services.error_group_triage(
                group=group, operator=request.user, assignee=request.user, note="in the admin"
            )
        self.message_user(request, f"{queryset.count()} group(s) assigned to you")

    def _bulk(self, request, queryset, service, verb: str):
        for group in queryset:
            result = service(group=group, operator=request.user, note="in the admin")
            more = f"; {result.remaining} more: run it again" if result.remaining else ""
            self.message_user(request, f"group {group.pk}: {result.done} job(s) {verb}{more}")
            for refused in result.refused[:20]:
                self.message_user(request, refused, messages.WARNING)

    @admin.action(
        description="Retry the group's jobs now (waiting or out of retries)",
        permissions=["operate"],
    )
    def retry_groups(self, request, queryset):
        self._bulk(request, queryset, group_services.error_group_retry, "queued for retry")

    @admin.action(
        description="Discard the group's jobs (waiting or out of retries; evidence kept)",
        permissions=["operate"],
    )
    def discard_groups(self, request, queryset):
        self._bulk(request, queryset, group_services.error_group_discard, "discarded")


# --- alerts ----------------------------------------------------------------------------------
class AlertChannelForm(ChangeReasonForm):
    """The webhook URL holds the chat's token: write-only, like a connection's secrets."""

    new_webhook_url = forms.URLField(
        required=False,
        assume_scheme="https",
        widget=UnfoldAdminPasswordWidget(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Webhook: the URL to post to (replaces the stored one; never shown again).",
    )
    kinds = forms.MultipleChoiceField(
        required=False,
        choices=[c for c in AlertKind.choices if c[0] not in ALWAYS_SENT_KINDS],
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text="The kinds of alert sent here; none ticked: every kind.",
    )

    class Meta:
        model = AlertChannel
        fields = ["name", "kind", "recipients", "kinds", "enabled"]

    def clean_recipients(self):
        from django.core.validators import validate_email

        value = self.cleaned_data.get("recipients") or ""
        addresses = [a.strip() for a in value.split(",") if a.strip()]
        for address in addresses:
            try:
                validate_email(address)
            except forms.ValidationError:
                raise forms.ValidationError(f"{address!r} is not an email address") from None
        return ", ".join(addresses)

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind == AlertChannelKind.EMAIL and not cleaned.get("recipients"):
            self.add_error("recipients", "An email channel needs at least one address.")
        stored = self.instance.pk and self.instance.webhook_url
        if kind == AlertChannelKind.WEBHOOK and not (cleaned.get("new_webhook_url") or stored):
            self.add_error("new_webhook_url", "A webhook channel needs its URL.")
        return cleaned

    def save(self, commit=True):
        channel = super().save(commit=False)
        if url := self.cleaned_data.get("new_webhook_url"):
            channel.webhook_url = url
        if commit:
            channel.save()
        return channel


@admin.register(AlertChannel)
class AlertChannelAdmin(AuditedAdmin):
    form = AlertChannelForm
    list_display = ("name", "kind", "enabled", "recipients", "kinds_shown")
    list_filter = ("kind", "enabled")
    readonly_fields = ("stored_webhook_url",)
    actions = ["send_test"]
    fieldsets = (
        (None, {"fields": ("name", "kind", "enabled", "kinds")}),
        ("Email", {"fields": ("recipients",)}),
        ("Webhook (write-only)", {"fields": ("stored_webhook_url", "new_webhook_url")}),
        ("Audit", {"fields": ("change_reason",)}),
    )

    @admin.display(description="Kinds sent")
    def kinds_shown(self, obj):
        return ", ".join(obj.kinds) if obj.kinds else "every kind"

    @admin.display(description="Stored webhook URL")
    def stored_webhook_url(self, obj):
        """Only whether one is stored and its host: the rest is the chat's token."""
        from urllib.parse import urlsplit

        from integrations.fields import reveal

        url = reveal(obj.webhook_url) if obj.pk else ""
        return f"set (https://{urlsplit(url).hostname}/•••)" if url else "(none)"

    @admin.action(description="Send a test alert", permissions=["change"])
    def send_test(self, request, queryset):
        for channel in queryset:
            alert = Alert.objects.create(
                kind=AlertKind.TEST,
                key=f"test:{channel.pk}",
                subject=f"Test alert to {channel.name}",
                text=f"Sent from the admin by {request.user} to check the channel.",
                status="sending",
                tried_at=timezone.now(),
            )
            status = alert_send(alert, channels=[channel])
            level = messages.SUCCESS if status == "sent" else messages.ERROR
            self.message_user(request, f"{channel.name}: {status}", level)


@admin.register(AlertRule)
class AlertRuleAdmin(AuditedAdmin):
    """One rule per kind, installed as shipped; edit its threshold or disable it."""

    list_display = ("kind", "enabled", "threshold", "sustained_seconds", "repeat_minutes")
    list_filter = ("enabled",)
    readonly_fields = ("kind",)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "status", "subject", "repeats", "sent_at")
    list_filter = ("kind", "status", "created_at")
    search_fields = ("subject", "=key")
    date_hierarchy = "created_at"
    exclude = ("deliveries", "error_group", "digest")
    readonly_fields = ("error_group_link", "digest_link", "pretty_deliveries")

    @admin.display(description="Error group")
    def error_group_link(self, obj):
        return admin_link(obj.error_group)

    @admin.display(description="Sent in the digest")
    def digest_link(self, obj):
        return admin_link(obj.digest)

    @admin.display(description="Deliveries")
    def pretty_deliveries(self, obj):
        return pretty_json(obj.deliveries)


# --- users and groups, in the same admin theme ----------------------------------------------
def _themed_auth_admin() -> None:
    from django.contrib.auth.admin import GroupAdmin as StockGroupAdmin
    from django.contrib.auth.admin import UserAdmin as StockUserAdmin
    from django.contrib.auth.models import Group, User
    from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

    class UserAdmin(StockUserAdmin, ModelAdmin):
        form = UserChangeForm
        add_form = UserCreationForm
        change_password_form = AdminPasswordChangeForm

    class GroupAdmin(StockGroupAdmin, ModelAdmin):
        pass

    for model, model_admin in ((User, UserAdmin), (Group, GroupAdmin)):
        if admin.site.is_registered(model):
            admin.site.unregister(model)
        admin.site.register(model, model_admin)


_themed_auth_admin()
