"""Configuration: typed defaults, MDT_* variables, and links built from the base URL."""
from __future__ import annotations

import pytest
from flask import Flask

from mdt import create_app
from mdt.config import ConfigError, configure
from mdt.web import external_url


def configured(monkeypatch, tmp_path, **environ: str) -> Flask:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    app = Flask("config-test", instance_path=str(tmp_path))
    configure(app)
    return app


def test_defaults_work_on_a_bare_machine(monkeypatch, tmp_path):
    app = configured(monkeypatch, tmp_path)
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'mdt.sqlite'}"
    assert app.config["BROKER_URL"] == f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    assert app.config["MAIL_BACKEND"] == "file"
    assert app.config["MAIL_PORT"] == 25 and app.config["MAIL_USE_TLS"] is False
    assert app.config["SERVER_NAME"] == "127.0.0.1:5000"


def test_variables_take_the_type_of_their_default(monkeypatch, tmp_path):
    app = configured(monkeypatch, tmp_path, MDT_MAIL_PORT="2525", MDT_MAIL_USE_TLS="yes",
                     MDT_NOTIFY_RETRY_DELAY="3", MDT_MAIL_PASSWORD="123456",
                     MDT_DATABASE_URL="postgresql://mdt@db/mdt", MDT_ENV="production")
    config = app.config
    assert config["MAIL_PORT"] == 2525 and config["MAIL_USE_TLS"] is True
    assert config["NOTIFY_RETRY_DELAY"] == 3.0 and isinstance(config["NOTIFY_RETRY_DELAY"], float)
    assert config["MAIL_PASSWORD"] == "123456"  # JSON would have made it a number
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://mdt@db/mdt"
    assert config["MAIL_BACKEND"] == "smtp" and config["SESSION_COOKIE_SECURE"] is True


@pytest.mark.parametrize("name, value", [("MDT_MAIL_PORT", "twenty-five"),
                                          ("MDT_MAIL_USE_TLS", "perhaps")])
def test_a_value_of_the_wrong_type_is_refused_with_its_name(monkeypatch, tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        configured(monkeypatch, tmp_path, **{name: value})


def test_production_refuses_the_development_secret(monkeypatch, tmp_path):
    monkeypatch.setenv("MDT_ENV", "production")
    monkeypatch.setenv("MDT_INSTANCE_PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="MDT_SECRET_KEY"):
        create_app()


def test_links_follow_the_base_url_even_inside_a_request(monkeypatch, tmp_path):
    monkeypatch.setenv("MDT_INSTANCE_PATH", str(tmp_path))
    app = create_app({"TESTING": True, "BASE_URL": "https://mdt.hospital.example/mdt/",
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite'}"})
    expected = "https://mdt.hospital.example/mdt/meetings/7"
    with app.app_context():
        assert external_url("meetings.detail", meeting_id=7) == expected
    with app.test_request_context("/", base_url="http://10.0.0.5:5000"):
        assert external_url("meetings.detail", meeting_id=7) == expected


@pytest.mark.parametrize("env", ["Production", "prod", "staging", ""])
def test_an_unknown_environment_refuses_to_start(monkeypatch, tmp_path, env):
    monkeypatch.setenv("MDT_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("MDT_ENV", env)
    monkeypatch.setenv("MDT_SECRET_KEY", "s" * 64)
    with pytest.raises(ConfigError, match="MDT_ENV must be one of development, test, production"):
        create_app()


def test_production_refuses_a_secret_key_shorter_than_32_bytes(monkeypatch, tmp_path):
    monkeypatch.setenv("MDT_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("MDT_ENV", "production")
    monkeypatch.setenv("MDT_DATABASE_URL", f"sqlite:///{tmp_path / 'x.sqlite'}")
    monkeypatch.setenv("MDT_SECRET_KEY", "k" * 31)
    with pytest.raises(ConfigError, match="MDT_SECRET_KEY must be at least 32 bytes"):
        create_app()
    monkeypatch.setenv("MDT_SECRET_KEY", "é" * 16)  # 32 bytes in UTF-8, 16 characters
    assert create_app().config["MDT_ENV"] == "production"


def test_session_settings_have_defaults_and_come_from_the_environment(monkeypatch, tmp_path):
    from datetime import timedelta

    app = configured(monkeypatch, tmp_path)
    assert app.config["REMEMBER_COOKIE_DURATION"] == timedelta(days=14)
    assert app.config["IDLE_TIMEOUT_MINUTES"] == 30
    app = configured(monkeypatch, tmp_path, MDT_REMEMBER_DAYS="3", MDT_IDLE_TIMEOUT_MINUTES="15")
    assert app.config["REMEMBER_COOKIE_DURATION"] == timedelta(days=3)
    assert app.config["IDLE_TIMEOUT_MINUTES"] == 15


@pytest.mark.parametrize("name, value", [("MDT_IDLE_TIMEOUT_MINUTES", "0"),
                                          ("MDT_HSTS_MAX_AGE", "-1"),
                                          ("MDT_REMEMBER_DAYS", "-1"),
                                          ("MDT_PATIENT_LOOKUP_LIMIT", "0")])
def test_a_setting_out_of_range_refuses_to_start(monkeypatch, tmp_path, name, value):
    monkeypatch.setenv("MDT_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        create_app({"TESTING": True,
                    "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite'}"})
@pytest.fixture
def real_clock():
    """Put the process's clock back to the real time after a test that moved it."""
    from mdt import clock

    yield clock
    clock.reset()


def _clock_app(monkeypatch, tmp_path, **environ: str) -> Flask:
    monkeypatch.setenv("MDT_INSTANCE_PATH", str(tmp_path))
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite'}"})


def test_a_development_process_can_start_with_an_offset_clock(monkeypatch, tmp_path,
                                                             real_clock):
    from datetime import UTC, datetime, timedelta

    _clock_app(monkeypatch, tmp_path, MDT_CLOCK_OFFSET_SECONDS="86400")
    shift = real_clock.now() - datetime.now(UTC)
    assert timedelta(hours=23, minutes=59) < shift <= timedelta(days=1)


def test_a_test_process_can_start_at_a_set_time_that_runs_on(monkeypatch, tmp_path, real_clock):
    import time
    from datetime import UTC, datetime, timedelta

    _clock_app(monkeypatch, tmp_path, MDT_ENV="test", MDT_CLOCK_AT="2026-12-03T09:00:00+08:00")
    first = real_clock.now()
    assert datetime(2026, 12, 3, 1, 0, tzinfo=UTC) <= first \
        < datetime(2026, 12, 3, 1, 0, 5, tzinfo=UTC)
    time.sleep(0.05)
    assert real_clock.now() - first >= timedelta(seconds=0.05)  # it runs, it is not frozen
    real_clock.set_now(datetime(2030, 1, 1, tzinfo=UTC))  # an in-process freeze still wins
    assert real_clock.now() == datetime(2030, 1, 1, tzinfo=UTC)


def test_a_clock_file_moves_a_running_process(monkeypatch, tmp_path, real_clock):
    from datetime import UTC, datetime, timedelta

    path = tmp_path / "clock"
    real_clock.write_file(path, datetime(2026, 12, 3, 9, 0, tzinfo=UTC))
    _clock_app(monkeypatch, tmp_path, MDT_CLOCK_FILE=str(path))
    at = real_clock.now()
    assert timedelta(0) <= at - datetime(2026, 12, 3, 9, 0, tzinfo=UTC) < timedelta(seconds=5)
    real_clock.write_file(path, datetime(2026, 12, 4, 9, 0, tzinfo=UTC))
    moved = real_clock.now() - datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    assert timedelta(0) <= moved < timedelta(seconds=5)
    path.write_text("-3600")
    shift = real_clock.now() - datetime.now(UTC)
    assert timedelta(hours=-1, seconds=-5) < shift <= timedelta(hours=-1)


@pytest.mark.parametrize("name, value", [("MDT_CLOCK_OFFSET_SECONDS", "60"),
                                          ("MDT_CLOCK_AT", "2026-12-03T09:00:00Z")])
def test_production_refuses_a_moved_clock(monkeypatch, tmp_path, real_clock, name, value):
    from datetime import UTC, datetime, timedelta

    with pytest.raises(ConfigError, match="development and tests only"):
        _clock_app(monkeypatch, tmp_path, MDT_ENV="production", MDT_SECRET_KEY="k" * 64,
                   **{name: value})
    assert abs(real_clock.now() - datetime.now(UTC)) < timedelta(seconds=1)


@pytest.mark.parametrize("value", ["2026-12-03 09:00", "tomorrow"])
def test_a_clock_time_without_a_zone_or_unreadable_is_refused(monkeypatch, tmp_path, real_clock,
                                                              value):
    with pytest.raises(ConfigError, match="MDT_CLOCK_AT"):
        _clock_app(monkeypatch, tmp_path, MDT_CLOCK_AT=value)
