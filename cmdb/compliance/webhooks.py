"""Webhooks: tell other systems about new high-severity findings.

Each webhook is a URL with a shared secret. A delivery is one POST of a JSON
body; the receiver checks it with the headers::

    X-Cmdb-Event: findings.new
    X-Cmdb-Delivery: <uuid>            (the same across retries of one delivery)
    X-Cmdb-Timestamp: <unix seconds>
    X-Cmdb-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" under the secret>

A delivery is retried with exponential backoff on connection errors, 429 and
5xx answers; any other 4xx is final. Configuration comes from a YAML file
named by ``CMDB_WEBHOOKS`` (``webhooks: [{url, secret, min_severity}]``) or,
for one hook, ``CMDB_WEBHOOK_URL`` with ``CMDB_WEBHOOK_SECRET``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from cmdb.compliance.errors import RuleError, WebhookError
from cmdb.compliance.findings import EvaluationReport, Finding
from cmdb.compliance.rules import severity_rank

__all__ = ["Delivery", "Webhook", "configured_webhooks", "deliver", "notify", "notify_configured", "sign", "verify"]

log = logging.getLogger(__name__)

EVENT = "findings.new"


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    secret: str
    min_severity: str = "high"
    retries: int = 4  # attempts after the first
    backoff_s: float = 0.5  # first wait; doubles each retry
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Delivery:
    url: str
    delivery_id: str
    attempts: int
    status: int


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver does: compare the signature in constant time."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def deliver(
    hook: Webhook,
    payload: dict[str, Any],
    *,
    event: str = EVENT,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """POST ``payload`` to ``hook``, signed, retrying; raise WebhookError when it cannot be delivered."""
    body = orjson.dumps(payload)
    delivery_id = str(uuid.uuid4())
    wait = hook.backoff_s
    last = ""
    for attempt in range(1, hook.retries + 2):
        timestamp = str(int(time.time()))
        request = urllib.request.Request(
            hook.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "cmdb-webhooks/1",
                "X-Cmdb-Event": event,
                "X-Cmdb-Delivery": delivery_id,
                "X-Cmdb-Timestamp": timestamp,
                "X-Cmdb-Signature": sign(hook.secret, timestamp, body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=hook.timeout_s) as answer:
                status = int(answer.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
        except (urllib.error.URLError, OSError) as exc:
            status = 0
            last = str(getattr(exc, "reason", exc))
        if 200 <= status < 300:
            log.info("webhook %s delivered %s (attempt %d)", hook.url, delivery_id, attempt)
            return Delivery(hook.url, delivery_id, attempt, status)
        if status and not _retryable(status):
            raise WebhookError(f"webhook {hook.url} refused delivery {delivery_id}: HTTP {status}")
        last = f"HTTP {status}" if status else last
        if attempt <= hook.retries:
            log.warning("webhook %s attempt %d failed (%s); retrying in %.1fs", hook.url, attempt, last, wait)
            sleep(wait)
            wait *= 2
    raise WebhookError(f"webhook {hook.url} failed after {hook.retries + 1} attempts: {last}")


def payload(findings: Sequence[Finding], at: str) -> dict[str, Any]:
    return {"event": EVENT, "at": at, "count": len(findings), "findings": [f.as_dict() for f in findings]}


def notify(
    hooks: Sequence[Webhook],
    report: EvaluationReport,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """Send each hook the new, reopened and re-raised findings at or above its severity.

    A hook that cannot be reached is logged and skipped: alerts never fail an evaluation.
    """
    done: list[Delivery] = []
    for hook in hooks:
        floor = severity_rank(hook.min_severity)
        wanted = [f for f in report.alerts if severity_rank(f.severity) >= floor and f.status == "open"]
        if not wanted:
            continue
        try:
            done.append(deliver(hook, payload(wanted, report.at.isoformat()), sleep=sleep))
        except WebhookError as exc:
            log.error("%s", exc)
    return done


def configured_webhooks(path: str | Path | None = None) -> list[Webhook]:
    """Hooks from a YAML file (``path`` or ``CMDB_WEBHOOKS``) or from ``CMDB_WEBHOOK_URL``/``_SECRET``."""
    path = path or os.environ.get("CMDB_WEBHOOKS") or None
    if path is None:
        url = os.environ.get("CMDB_WEBHOOK_URL", "")
        if not url:
            return []
        secret = os.environ.get("CMDB_WEBHOOK_SECRET", "")
        if not secret:
            raise RuleError("CMDB_WEBHOOK_URL is set but CMDB_WEBHOOK_SECRET is not: payloads must be signed")
        return [Webhook(url, secret, os.environ.get("CMDB_WEBHOOK_MIN_SEVERITY", "high"))]
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise RuleError(f"{path}: cannot read the webhook configuration: {exc}") from None
    hooks = []
    for spec in data.get("webhooks") or []:
        if not isinstance(spec, dict) or not spec.get("url") or not spec.get("secret"):
            raise RuleError(f"{path}: each webhook needs a url and a secret")
        secret = str(spec["secret"])
        if secret.startswith("env:"):
            secret = os.environ.get(secret[4:], "")
        hooks.append(
            Webhook(
                str(spec["url"]),
                secret,
                str(spec.get("min_severity", "high")),
                int(spec.get("retries", 4)),
                float(spec.get("backoff_s", 0.5)),
            )
        )
    return hooks


def notify_configured(report: EvaluationReport) -> int:
    hooks = configured_webhooks()
    return len(notify(hooks, report)) if hooks else 0
