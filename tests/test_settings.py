"""Settings are read and checked in one place (``settings.py``), every kind of value the same way."""

import pytest

from analytics_pipeline.settings import Settings, SettingsError

PORTS = {"ANALYTICS_PG_PORT": 5432, "ANALYTICS_ALERT_SMTP_PORT": 25, "ANALYTICS_REPORT_SMTP_PORT": 25}


@pytest.mark.parametrize("name", sorted(PORTS))
def test_every_port_setting_is_checked_alike(name: str) -> None:
    field = name.removeprefix("ANALYTICS_").lower()
    assert getattr(Settings.from_env({}), field) == PORTS[name]  # unset: the default
    assert getattr(Settings.from_env({name: "2525"}), field) == 2525
    for bad in ("smtp", "-1", "0", "65536", "25.0"):
        with pytest.raises(SettingsError, match=f"^{name}='{bad}' is not a port number"):
            Settings.from_env({name: bad})
