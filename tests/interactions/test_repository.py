"""The FHIR core below HTTP: concurrent first writes of the same id, settings."""

from __future__ import annotations

import threading
import uuid

import pytest

from ketnoi.config import ConfigError, from_env
from ketnoi.interactions.context import RequestContext
from ketnoi.interactions.repository import Repository
from ketnoi.interactions.request import FhirRequest
from ketnoi.interactions.router import handle
from ketnoi.interactions.services import Services


def test_racing_creates_of_one_id(services: Services) -> None:
    """Two transactions create the same new id at once. PostgreSQL: the second gets 409 and
    writes nothing. SQLite: its single writer serialises them into versions 1 and 2."""
    id = uuid.uuid4().hex
    body = {"resourceType": "Patient", "id": id}
    first_flushed = threading.Event()
    release_first = threading.Event()
    outcome: dict[str, object] = {}

    def first() -> None:
        with services.store.session(write=True) as session:
            Repository(services, session, RequestContext.operator("test")).update("Patient", id, body)
            session.flush()  # version 1 is in the database, uncommitted
            first_flushed.set()
            release_first.wait(10)
        outcome["first"] = "committed"

    def second() -> None:  # the same PUT as over HTTP, through the router
        response = handle(services, FhirRequest("PUT", f"Patient/{id}", body=body))
        outcome["second"] = response.status
        outcome["second_body"] = response.resource

    t1 = threading.Thread(target=first)
    t1.start()
    assert first_flushed.wait(10)
    t2 = threading.Thread(target=second)
    t2.start()
    t2.join(0.5)  # PostgreSQL: blocked on the uncommitted key; SQLite: waiting for the write lock
    release_first.set()
    t1.join(10)
    t2.join(10)
    with services.store.session(write=False) as session:
        current = session.current("Patient", id)
    assert current is not None
    if services.store.dialect == "postgresql":
        assert outcome["second"] == 409
        assert "retry" in str(outcome["second_body"])
        assert current.version == 1
    else:
        assert outcome["second"] == 200  # updated the version the first one committed
        assert current.version == 2


def test_settings_from_environment() -> None:
    settings = from_env(
        {
            "KETNOI_DATABASE": "sqlite:///x.db",
            "KETNOI_PORT": "9000",
            "KETNOI_HOST": "0.0.0.0",
            "KETNOI_MAX_BODY_BYTES": "1024",
            "KETNOI_STRICT": "false",
        }
    )
    assert (settings.database, settings.port, settings.host) == ("sqlite:///x.db", 9000, "0.0.0.0")
    assert settings.max_body_bytes == 1024
    assert settings.strict is False
    with pytest.raises(ValueError):
        from_env({"KETNOI_PORT": "eighty"})


def test_care_window_and_break_glass_settings_from_environment() -> None:
    settings = from_env({"KETNOI_CARE_WINDOW_DAYS": "3650", "KETNOI_BREAK_GLASS_MINUTES": "15"})
    assert (settings.care_window_days, settings.break_glass_minutes) == (3650.0, 15.0)
    assert from_env({}).care_window_days == 30.0
    for bad in ("0", "-3", "thirty"):
        with pytest.raises(ConfigError, match="KETNOI_CARE_WINDOW_DAYS must be a positive number"):
            from_env({"KETNOI_CARE_WINDOW_DAYS": bad})
