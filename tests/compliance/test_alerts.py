"""Waivers (recorded, listed, re-raised on expiry) and signed webhooks with retries, to a local receiver."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from click.testing import CliRunner

from cmdb.cli import cli
from cmdb.compliance import evaluate, list_findings, open_findings
from cmdb.compliance.errors import ComplianceError, WebhookError
from cmdb.compliance.waivers import list_waivers, revoke, waive
from cmdb.compliance.webhooks import Webhook, deliver, notify, verify
from cmdb.store import SqliteStore

from .conftest import Clock, Loader
from .estates import aws_ci

SECRET = "s3cr3t-for-tests"
BUCKET = "arn:aws:s3:::acme-public-exports"
KEY = f"storage.public-bucket|{BUCKET}"


class Receiver:
    """A webhook receiver on 127.0.0.1 that fails the first ``fail`` requests with ``status``."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.fail = 0
        self.status = 503
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                code = receiver.status if receiver.fail > 0 else 204
                receiver.fail -= 1
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/cmdb"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


def no_sleep(seconds: float) -> None:
    waits.append(seconds)


waits: list[float] = []


def test_waiver_holds_until_it_expires_then_the_finding_is_re_raised(store: SqliteStore, load: Loader, clock: Clock) -> None:
    load([aws_ci(BUCKET, "aws.s3.bucket", "acme-public-exports", {"public": True})])
    evaluate(store, at=clock())
    with pytest.raises(ComplianceError, match="not in the future"):
        waive(store, KEY, justification="x", approver="y", expires=clock() - timedelta(days=1), actor="alice", at=clock())
    waiver = waive(store, KEY, justification="static website, reviewed", approver="ciso@example.com",
                   expires=clock() + timedelta(days=30), actor="alice", at=clock())
    assert open_findings(store, at=clock()) == []
    [(listed, state)] = list_waivers(store, at=clock())
    assert (listed.approver, listed.justification, state) == ("ciso@example.com", "static website, reviewed", "active")

    report = evaluate(store, at=clock.advance(days=10))
    assert [f.key for f in report.waived] == [KEY] and report.alerts == []

    report = evaluate(store, at=clock.advance(days=25))  # the waiver expired on day 30
    [raised] = report.reraised
    assert raised.key == KEY and raised.reraised_at == clock() and raised.status == "open"
    assert [f.key for f in open_findings(store, at=clock())] == [KEY]
    assert list_waivers(store, at=clock()) == [] and list_waivers(store, include_inactive=True, at=clock())[0][1] == "expired"
    assert waiver.expires < clock()


def test_revoking_a_waiver_reopens_the_finding(store: SqliteStore, load: Loader, clock: Clock) -> None:
    load([aws_ci(BUCKET, "aws.s3.bucket", "acme-public-exports", {"public": True})])
    evaluate(store, at=clock())
    waive(store, KEY, justification="j", approver="a", expires=clock() + timedelta(days=30), actor="alice", at=clock())
    revoke(store, KEY, actor="bob", at=clock.advance(days=1))
    assert [f.key for f in list_findings(store, at=clock())] == [KEY]
    report = evaluate(store, at=clock.advance(hours=1))
    assert [f.key for f in report.reraised] == [KEY]


def test_new_high_severity_findings_are_posted_signed(store: SqliteStore, load: Loader, clock: Clock, receiver: Receiver) -> None:
    load(
        [
            aws_ci(BUCKET, "aws.s3.bucket", "acme-public-exports", {"public": True}),
            aws_ci("arn:aws:ec2:eu-west-1:111122223333:volume/vol-1", "aws.ec2.volume", "vol-1", {"encrypted": False}),  # medium
        ]
    )
    hook = Webhook(receiver.url, SECRET, min_severity="high", retries=3, backoff_s=0.01)
    report = evaluate(store, at=clock())
    delivered = notify([hook], report, sleep=no_sleep)
    assert len(delivered) == 1 and delivered[0].attempts == 1
    [(headers, body)] = receiver.requests
    assert verify(SECRET, headers["x-cmdb-timestamp"], body, headers["x-cmdb-signature"])
    assert not verify("wrong-secret", headers["x-cmdb-timestamp"], body, headers["x-cmdb-signature"])
    payload = orjson.loads(body)
    assert headers["x-cmdb-event"] == "findings.new" and payload["count"] == 1
    assert payload["findings"][0]["key"] == KEY and payload["findings"][0]["severity"] == "high"

    # The next evaluation finds nothing new: nothing is sent.
    assert notify([hook], evaluate(store, at=clock.advance(hours=1)), sleep=no_sleep) == []
    assert len(receiver.requests) == 1


def test_deliveries_retry_with_backoff_and_give_up(receiver: Receiver) -> None:
    waits.clear()
    hook = Webhook(receiver.url, SECRET, retries=3, backoff_s=0.01)
    receiver.fail = 2
    done = deliver(hook, {"hello": "world"}, sleep=no_sleep)
    assert done.attempts == 3 and waits == [0.01, 0.02]
    ids = {headers["x-cmdb-delivery"] for headers, _ in receiver.requests}
    assert ids == {done.delivery_id}  # one delivery id across retries

    receiver.fail, receiver.requests = 10, []
    with pytest.raises(WebhookError, match="after 4 attempts"):
        deliver(hook, {"hello": "again"}, sleep=no_sleep)
    assert len(receiver.requests) == 4

    receiver.fail, receiver.status, receiver.requests = 1, 400, []
    with pytest.raises(WebhookError, match="HTTP 400"):
        deliver(hook, {"bad": "request"}, sleep=no_sleep)
    assert len(receiver.requests) == 1  # a 4xx is final


def test_an_unreachable_hook_does_not_fail_the_evaluation(store: SqliteStore, load: Loader, clock: Clock) -> None:
    load([aws_ci(BUCKET, "aws.s3.bucket", "acme-public-exports", {"public": True})])
    dead = Webhook("http://127.0.0.1:9/nothing-listens", SECRET, retries=1, backoff_s=0.0, timeout_s=2)
    assert notify([dead], evaluate(store, at=clock()), sleep=no_sleep) == []


def test_cli_evaluation_posts_to_the_configured_webhook(tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    estate = tmp_path / "estate.yaml"
    estate.write_text(yaml.safe_dump({"scope": "s", "cis": [aws_ci(BUCKET, "aws.s3.bucket", "acme-public-exports", {"public": True})]}), encoding="utf-8")
    config = tmp_path / "hooks.yaml"
    config.write_text(yaml.safe_dump({"webhooks": [{"url": receiver.url, "secret": "env:HOOK_SECRET", "min_severity": "high"}]}), encoding="utf-8")
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    monkeypatch.setenv("CMDB_WEBHOOKS", str(config))
    db = tmp_path / "cli.db"
    for args in (["sync", "file", str(estate)], ["findings", "--evaluate"], ["findings", "--evaluate"]):
        result = CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    [(headers, body)] = receiver.requests  # the second evaluation found nothing new
    assert verify(SECRET, headers["x-cmdb-timestamp"], body, headers["x-cmdb-signature"])
    assert orjson.loads(body)["findings"][0]["key"] == KEY
