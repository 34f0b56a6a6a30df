"""Broker URLs: ``rediss://`` verifies the server's certificate by default in every
client library, and a password never shows in a message."""

from __future__ import annotations

import ssl

from orchestrator.broker import kombu_connection, redact, tls_options
from orchestrator.celery import make_celery
from orchestrator.settings import Settings


def test_rediss_without_options_verifies_certificates_as_redis_py_does() -> None:
    assert tls_options("rediss://127.0.0.1:6380/0") == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    assert kombu_connection("rediss://127.0.0.1:6380/0").ssl == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    app = make_celery(Settings(broker_url="rediss://127.0.0.1:6380/0"))
    assert app.conf.broker_use_ssl == {"ssl_cert_reqs": ssl.CERT_REQUIRED}


def test_the_url_s_own_tls_parameters_are_kept() -> None:
    url = "rediss://u:p@127.0.0.1:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/etc/ca.pem"
    assert tls_options(url) is None  # kombu and redis-py read the parameters themselves
    assert kombu_connection(url).ssl == {
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "ssl_ca_certs": "/etc/ca.pem",
    }
    assert kombu_connection(url.replace("=required", "=none")).ssl["ssl_cert_reqs"] == (
        ssl.CERT_NONE
    )


def test_plain_brokers_get_no_tls() -> None:
    assert tls_options("redis://127.0.0.1:6379/0") is None
    assert tls_options("amqp://guest:guest@127.0.0.1:5672//") is None
    assert not make_celery(Settings(broker_url="redis://127.0.0.1:6379/0")).conf.broker_use_ssl


def test_a_password_is_redacted_and_nothing_else_changes() -> None:
    assert redact("redis://:s3cret@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert redact("rediss://segue:pw@h:6380/1?ssl_cert_reqs=required") == (
        "rediss://segue:***@h:6380/1?ssl_cert_reqs=required"
    )
    assert redact("amqp://guest:guest@[::1]:5672/vhost") == "amqp://guest:***@[::1]:5672/vhost"
    assert redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
