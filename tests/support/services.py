"""Real services for tests: a PostgreSQL database and a Redis database of their own.

When a service is missing the test is skipped - or fails when ``CI`` is set,
since CI must run everything.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
import redis
from psycopg import sql

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
PG_URL = "postgresql://postgres@127.0.0.1:5432/{name}"
REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
CLAIM_KEY = "segue:test-run-claim"


def missing(what: str, exc: BaseException) -> None:
    """Skip, or fail under CI, because ``what`` is unreachable."""
    message = f"{what} is not reachable ({exc}); run scripts/ensure-services.sh"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped afterwards; yields its URL."""
    name = f"segue_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        missing("PostgreSQL on 127.0.0.1:5432", exc)
        raise
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield PG_URL.format(name=name)
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """A RabbitMQ virtual host of this test run's own (guest may use it), deleted afterwards."""
    name = f"segue_test_{uuid.uuid4().hex[:12]}"
    try:
        _rabbitmqctl("add_vhost", name)
        _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    except (OSError, subprocess.SubprocessError) as exc:
        missing("RabbitMQ (rabbitmqctl) on 127.0.0.1:5672", exc)
        raise
    try:
        yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    finally:
        _rabbitmqctl("delete_vhost", name)


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextmanager
def redis_database() -> Iterator[str]:
    """A Redis database number no other test run holds, flushed afterwards; yields its URL."""
    try:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=3).ping()
    except redis.RedisError as exc:
        missing("Redis on 127.0.0.1:6379", exc)
        raise
    for number in range(1, 16):
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number)
        if client.set(CLAIM_KEY, os.getpid(), nx=True, ex=3 * 3600):
            break
    else:
        pytest.fail("every Redis database 1-15 is claimed by another test run")
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{number}"
    finally:
        client.flushdb()
