"""`manage.py check --deploy` with production settings has nothing to say about
secrets, DEBUG, hosts or HTTPS (issue 9, done-when)."""

import re

from tests.support.environment import production_environment, run_python, setting_in_subprocess

# Django's deploy checks about those subjects (security.W001 ... W025) and ours.
ABOUT_SECRETS_DEBUG_HOSTS_HTTPS = re.compile(r"\((security\.W\d+|integrations\.[EW]\d+)\)")


def test_check_deploy_with_production_settings_reports_nothing(tmp_path):
    """Rule: the README's deployment variables (DEBUG=false, SECRET_KEY, ALLOWED_HOSTS,
    FIELD_ENCRYPTION_KEYS) are enough; every HTTPS setting defaults to its production
    value when DEBUG is off (SSL redirect, secure cookies, one year of HSTS with
    subdomains and preload)."""
    result = run_python(
        "manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env=production_environment(tmp_path),
    )
    output = result.stdout + result.stderr
    assert ABOUT_SECRETS_DEBUG_HOSTS_HTTPS.findall(output) == [], output
    assert result.returncode == 0, output
    assert "System check identified no issues" in output


def test_https_settings_follow_the_environment(tmp_path):
    expression = (
        "settings.SECURE_SSL_REDIRECT, settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE,"
        " settings.SECURE_HSTS_SECONDS, settings.SECURE_PROXY_SSL_HEADER"
    )
    assert setting_in_subprocess(tmp_path, expression) == "True True True 31536000 None"
    assert setting_in_subprocess(tmp_path, expression, DEBUG="true") == "False False False 0 None"
    assert (
        setting_in_subprocess(
            tmp_path,
            expression,
            SECURE_SSL_REDIRECT="false",
            SECURE_HSTS_SECONDS="600",
            SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
        )
        == "False True True 600 ('HTTP_X_FORWARDED_PROTO', 'https')"
    )
