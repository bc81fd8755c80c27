"""CPU utilisation from CloudWatch, for idle-compute detection.

A small reader over ``boto3``'s CloudWatch ``get_metric_statistics``: daily
averages of ``AWS/EC2 CPUUtilization`` per instance. Credentials, region and
endpoint come from the SDK's own chain (``AWS_ENDPOINT_URL`` points it at a
local stand-in in tests). Other clouds' utilisation arrives as the
``cpu_avg_percent`` attribute their connectors fill.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cmdb.compliance.errors import ComplianceError
from cmdb.model import CI, now

__all__ = ["CloudWatchCpu", "CpuSample", "CpuSource", "instance_id"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CpuSample:
    """Daily average CPU over a window: one value a day that had data."""

    daily_avg: tuple[float, ...]
    source: str

    @property
    def days(self) -> int:
        return len(self.daily_avg)

    @property
    def peak_daily(self) -> float:
        return max(self.daily_avg) if self.daily_avg else 0.0

    @property
    def mean(self) -> float:
        return sum(self.daily_avg) / len(self.daily_avg) if self.daily_avg else 0.0


CpuSource = Callable[[CI, int], CpuSample | None]
"""Given a compute CI and a number of days, its CPU sample (None when unknown)."""


def instance_id(ci: CI) -> str:
    """The EC2 instance id of an ``aws.ec2.instance`` CI (attribute, else the ARN's tail)."""
    given = ci.attributes.get("instance_id")
    if isinstance(given, str) and given:
        return given
    return ci.id.rsplit("/", 1)[-1]


def _region(ci: CI) -> str:
    if ci.region:
        return ci.region
    parts = ci.id.split(":")
    return parts[3] if len(parts) > 5 and parts[0] == "arn" else ""


@dataclass
class CloudWatchCpu:
    """Reads daily CPU averages for EC2 instances; one client per region, made on first use."""

    client_factory: Callable[[str], Any] | None = None
    clock: Callable[[], datetime] = now
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def _client(self, region: str) -> Any:
        if region not in self._clients:
            if self.client_factory is not None:
                self._clients[region] = self.client_factory(region)
            else:
                import boto3  # type: ignore[import-untyped]

                self._clients[region] = boto3.client("cloudwatch", region_name=region or None)
        return self._clients[region]

    def __call__(self, ci: CI, days: int) -> CpuSample | None:
        if ci.type != "aws.ec2.instance":
            return None
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        end = self.clock()
        start = end - timedelta(days=days)
        try:
            answer = self._client(_region(ci)).get_metric_statistics(
                Namespace="AWS/EC2",
                MetricName="CPUUtilization",
                Dimensions=[{"Name": "InstanceId", "Value": instance_id(ci)}],
                StartTime=start,
                EndTime=end,
                Period=86400,
                Statistics=["Average"],
            )
        except (BotoCoreError, ClientError) as exc:
            raise ComplianceError(f"CloudWatch metrics for {ci.id} could not be read: {exc}", hint="check AWS credentials and cloudwatch:GetMetricStatistics") from exc
        points = sorted(answer.get("Datapoints", []), key=lambda p: p["Timestamp"])
        if not points:
            return None
        return CpuSample(tuple(float(p["Average"]) for p in points), "cloudwatch")


def attribute_cpu(ci: CI, days: int) -> CpuSample | None:
    """The ``cpu_avg_percent`` a connector recorded (one value standing for its window)."""
    value = ci.attributes.get("cpu_avg_percent")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return CpuSample((float(value),) * days, "attribute cpu_avg_percent")
    return None
