import pytest
from pyrate_limiter import Rate

from integrations.kernel.exceptions import RateLimited
from integrations.kernel.throttle import rate_for, throttle


def test_fractional_rates():
    assert repr(rate_for(5)) == repr(Rate(5, 1000))
    assert repr(rate_for("2.5")) == repr(Rate(5, 2000))
    with pytest.raises(ValueError):
        rate_for(0)


@pytest.mark.django_db
def test_bucket_admits_the_configured_rate_and_no_more(erp_connection, tmp_path, settings):
    settings.VAR_DIR = tmp_path
    erp_connection.rate_limit_per_second = 10
    erp_connection.save()
    for _ in range(10):
        throttle(erp_connection, timeout=0.05)
    with pytest.raises(RateLimited):
        throttle(erp_connection, timeout=0.05)


@pytest.mark.django_db
def test_bucket_is_shared_between_processes(erp_connection, tmp_path, settings):
    """A second process sees the slots this one used (file-backed bucket)."""
    import subprocess
    import sys

    settings.VAR_DIR = tmp_path
    erp_connection.rate_limit_per_second = 3
    erp_connection.save()
    for _ in range(3):
        throttle(erp_connection, timeout=0.05)
    code = (
        "from pyrate_limiter import Limiter, SQLiteBucket, Rate;"
        "b = SQLiteBucket.init_from_file([Rate(3, 1000)],"
        f" table='integrations_throttle_{erp_connection.pk}',"
        f" db_path={str(tmp_path / 'throttle.sqlite3')!r}, use_file_lock=True);"
        f"print(Limiter(b).try_acquire('{erp_connection.pk}', blocking=True, timeout=0.05))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.django_db
def test_throttle_gives_up_as_retryable_rate_limit(erp_connection, tmp_path, settings):
    settings.VAR_DIR = tmp_path
    erp_connection.rate_limit_per_second = 1
    erp_connection.save()
    throttle(erp_connection)
    with pytest.raises(RateLimited) as caught:
        throttle(erp_connection, timeout=0.05)
    assert caught.value.retryable
