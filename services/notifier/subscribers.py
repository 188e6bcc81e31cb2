"""The webhook subscribers file (deploy/webhooks.yaml) and which alerts go to whom.

    subscribers:
      - name: dispatch-cad            # unique; used in logs, metrics and dead letters
        url: https://cad.example/hooks/platewatch
        secret_env: PLATEWATCH_WEBHOOK_SECRET_CAD   # env var holding the HMAC secret
        events: [alert_raised, alert_updated]       # default: [alert_raised]
        agencies: [pd-north]                        # optional: only alerts of these agencies

An alert as raised by the hotlist service is an `alert_raised` event; every workflow step the API
publishes (confirmed, dispatched, dismissed, outcome) is an `alert_updated` event.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from services.api.alert_workflow import is_update, outcome_name, status_name
from services.common.pb.platewatch.v1 import alerts_pb2


class Event(StrEnum):
    alert_raised = "alert_raised"
    alert_updated = "alert_updated"


class WebhooksFileError(ValueError):
    """The webhooks file is invalid or names a secret that is not set."""


@dataclass(frozen=True)
class Subscriber:
    name: str
    url: str
    secret: str
    events: frozenset[Event]
    # Empty: every agency.
    agencies: frozenset[str] = frozenset()

    def wants(self, alert: alerts_pb2.Alert) -> bool:
        """Whether this alert version goes to this subscriber (its event kind and agency)."""
        if event_of(alert) not in self.events:
            return False
        if not self.agencies:
            return True
        return bool({alert.read.camera.agency_id, alert.entry.agency_id} & self.agencies)


def event_of(alert: alerts_pb2.Alert) -> Event:
    return Event.alert_updated if is_update(alert) else Event.alert_raised


def delivery_id(alert: alerts_pb2.Alert) -> str:
    """Stable per alert version: `<alert_id>:<status>`, plus `:<outcome>` once one is recorded (the
    outcome does not change the status). Retries and redeliveries of a version repeat it."""
    parts = [alert.alert_id, status_name(alert.status or alerts_pb2.ALERT_STATUS_UNCONFIRMED)]
    if alert.outcome:
        parts.append(outcome_name(alert.outcome))
    return ":".join(parts)


def _strings(raw: Any, where: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(item, str) and item for item in raw):
        raise WebhooksFileError(f"{where} must be a list of non-empty strings")
    return raw


def parse_subscribers(document: Any, environ: Mapping[str, str]) -> list[Subscriber]:
    """Subscribers from a parsed webhooks document; secrets are read from `environ`."""
    if document is None:
        return []
    if not isinstance(document, dict):
        raise WebhooksFileError("the webhooks file must be a mapping with a 'subscribers' list")
    raw_list = document.get("subscribers")
    if raw_list is None:
        return []
    if not isinstance(raw_list, list):
        raise WebhooksFileError("'subscribers' must be a list")
    subscribers: list[Subscriber] = []
    for index, raw in enumerate(raw_list):
        where = f"subscribers[{index}]"
        if not isinstance(raw, dict):
            raise WebhooksFileError(f"{where} must be a mapping")
        unknown = set(raw) - {"name", "url", "secret_env", "events", "agencies"}
        if unknown:
            raise WebhooksFileError(f"{where}: unknown keys {sorted(unknown)}")
        name, url, secret_env = raw.get("name"), raw.get("url"), raw.get("secret_env")
        for key, value in (("name", name), ("url", url), ("secret_env", secret_env)):
            if not isinstance(value, str) or not value:
                raise WebhooksFileError(f"{where}: '{key}' is required")
        assert isinstance(name, str) and isinstance(url, str) and isinstance(secret_env, str)
        where = f"subscriber {name!r}"
        if urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
            raise WebhooksFileError(f"{where}: url must be an http(s) URL, not {url!r}")
        try:
            events = frozenset(
                Event(e) for e in _strings(raw.get("events", ["alert_raised"]), f"{where}.events")
            )
        except ValueError as exc:
            raise WebhooksFileError(f"{where}: {exc}; events are {', '.join(Event)}") from None
        if not events:
            raise WebhooksFileError(f"{where}: events must not be empty")
        agencies = frozenset(_strings(raw.get("agencies", []), f"{where}.agencies"))
        secret = environ.get(secret_env, "")
        if not secret:
            raise WebhooksFileError(
                f"{where}: environment variable {secret_env} (its HMAC secret) is not set"
            )
        if any(s.name == name for s in subscribers):
            raise WebhooksFileError(f"{where}: duplicate name")
        subscribers.append(Subscriber(name, url, secret, events, agencies))
    return subscribers


def load_subscribers(path: Path, environ: Mapping[str, str] | None = None) -> list[Subscriber]:
    """Subscribers listed in `path`; a missing file is an error (a typo must not silence alerts)."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise WebhooksFileError(f"cannot read webhooks file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise WebhooksFileError(f"webhooks file {path} is not valid YAML: {exc}") from exc
    return parse_subscribers(document, os.environ if environ is None else environ)
