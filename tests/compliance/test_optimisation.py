"""Optimisation: idle compute from CloudWatch (moto), unattached volumes, unused IPs, empty LBs, old snapshots; cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from cmdb.compliance.cost import estimate, load_prices, rollup
from cmdb.compliance.metrics import CloudWatchCpu
from cmdb.compliance.optimisation import OptimisationSettings, mark_for_optimisation, recommend
from cmdb.model import CI
from cmdb.store import SqliteStore
from cmdb.sync import SyncEngine

from .conftest import Clock, Loader
from .estates import arn


def _instance(instance_id: str, instance_type: str = "m5.large", **attributes: object) -> dict[str, object]:
    return {
        "id": arn("ec2", f"instance/{instance_id}"),
        "type": "aws.ec2.instance",
        "provider": "aws",
        "region": "eu-west-1",
        "owner": "team-web",
        "attributes": {"instance_id": instance_id, "instance_type": instance_type, "state": "running", **attributes},
    }


def test_idle_compute_from_seeded_cloudwatch_metrics(aws: str, store: SqliteStore, load: Loader) -> None:
    ec2 = boto3.client("ec2", region_name="eu-west-1")
    reservation = ec2.run_instances(ImageId="ami-0123456789abcdef0", MinCount=3, MaxCount=3, InstanceType="m5.large")
    idle, busy, young = (i["InstanceId"] for i in reservation["Instances"])
    cloudwatch = boto3.client("cloudwatch", region_name="eu-west-1")
    end = datetime.now(UTC)

    def seed(instance_id: str, values: list[float]) -> None:
        cloudwatch.put_metric_data(
            Namespace="AWS/EC2",
            MetricData=[
                {
                    "MetricName": "CPUUtilization",
                    "Dimensions": [{"Name": "InstanceId", "Value": instance_id}],
                    "Timestamp": end - timedelta(days=day, hours=2),
                    "Value": value,
                    "Unit": "Percent",
                }
                for day, value in enumerate(values)
            ],
        )

    seed(idle, [1.5, 2.0, 0.8, 3.1, 1.0, 0.9, 2.2, 1.4, 1.1, 0.7, 2.9, 1.8, 1.2, 0.6])
    seed(busy, [1.5, 2.0, 0.8, 3.1, 1.0, 0.9, 41.0, 1.4, 1.1, 0.7, 2.9, 1.8, 1.2, 0.6])  # one busy day
    seed(young, [0.5, 0.4, 0.6])  # too little evidence to call it idle
    load([_instance(idle), _instance(busy), _instance(young), _instance("i-0nometrics0000001")])

    found = recommend(store, cpu=[CloudWatchCpu()], kinds=["idle-compute"])
    assert [r.ci_id for r in found] == [arn("ec2", f"instance/{idle}")]
    [rec] = found
    assert "cloudwatch" in rec.detail and "14 days" in rec.detail
    assert rec.monthly_cost == pytest.approx(0.096 * 730, abs=0.01)  # m5.large list price


def test_waste_kinds_with_estimated_costs(store: SqliteStore, load: Loader, timed_engine: SyncEngine, clock: Clock) -> None:
    lb = arn("elasticloadbalancing", "loadbalancer/app/web-empty/50dc6c495c0c9190")
    lb_ok = arn("elasticloadbalancing", "loadbalancer/app/web-live/50dc6c495c0c9191")
    old = (clock() - timedelta(days=200)).isoformat()
    recent = (clock() - timedelta(days=10)).isoformat()
    load(
        [
            _instance("i-0idle000000000001", "t3.large", cpu_avg_percent=1.2),
            _instance("i-0busy000000000001", "t3.large", cpu_avg_percent=35.0),
            _instance("i-0stop000000000001", "t3.large", cpu_avg_percent=0.0, state="stopped"),
            {"id": arn("ec2", "volume/vol-0free00000000001"), "type": "aws.ec2.volume", "provider": "aws",
             "attributes": {"volume_id": "vol-0free00000000001", "state": "available", "size_gb": 500, "volume_type": "gp3"}},
            {"id": arn("ec2", "volume/vol-0used00000000001"), "type": "aws.ec2.volume", "provider": "aws",
             "attributes": {"volume_id": "vol-0used00000000001", "state": "in-use", "size_gb": 50, "volume_type": "gp2"}},
            {"id": arn("ec2", "elastic-ip/eipalloc-0free0000000001"), "type": "aws.ec2.elastic_ip", "provider": "aws",
             "attributes": {"public_ip": "198.51.100.7", "allocation_id": "eipalloc-0free0000000001", "domain": "vpc"}},
            {"id": arn("ec2", "elastic-ip/eipalloc-0used0000000001"), "type": "aws.ec2.elastic_ip", "provider": "aws",
             "attributes": {"public_ip": "198.51.100.8", "association_id": "eipassoc-01", "instance_id": "i-0busy000000000001"}},
            {"id": lb, "type": "aws.elbv2.load_balancer", "provider": "aws", "attributes": {"lb_type": "application"}},
            {"id": lb_ok, "type": "aws.elbv2.load_balancer", "provider": "aws", "attributes": {"lb_type": "application"}},
            {"id": arn("elasticloadbalancing", "targetgroup/empty/1"), "type": "aws.elbv2.target_group", "provider": "aws",
             "attributes": {"healthy_targets": 0, "unhealthy_targets": 2, "load_balancer_arns": [lb]}},
            {"id": arn("elasticloadbalancing", "targetgroup/live/2"), "type": "aws.elbv2.target_group", "provider": "aws",
             "attributes": {"targets": [{"id": "i-0busy000000000001", "port": 80, "health": "healthy"}]}},
            {"id": arn("ec2", "snapshot/snap-0old0000000000001", region="eu-west-1"), "type": "aws.ec2.snapshot", "provider": "aws",
             "attributes": {"snapshot_id": "snap-0old0000000000001", "volume_id": "vol-0gone00000000001", "size_gb": 200, "start_time": old}},
            {"id": arn("ec2", "snapshot/snap-0new0000000000001"), "type": "aws.ec2.snapshot", "provider": "aws",
             "attributes": {"snapshot_id": "snap-0new0000000000001", "volume_id": "vol-0used00000000001", "size_gb": 50, "start_time": recent}},
        ],
        [{"from": lb_ok, "type": "ROUTES_TO", "to": arn("elasticloadbalancing", "targetgroup/live/2")}],
    )
    found = {(r.kind, r.ci_id): r for r in recommend(store, at=clock())}
    assert set(found) == {
        ("idle-compute", arn("ec2", "instance/i-0idle000000000001")),
        ("unattached-volume", arn("ec2", "volume/vol-0free00000000001")),
        ("unused-elastic-ip", arn("ec2", "elastic-ip/eipalloc-0free0000000001")),
        ("lb-without-healthy-targets", lb),
        ("stale-snapshot", arn("ec2", "snapshot/snap-0old0000000000001")),
    }
    assert found[("unattached-volume", arn("ec2", "volume/vol-0free00000000001"))].monthly_cost == pytest.approx(40.0)
    assert found[("unused-elastic-ip", arn("ec2", "elastic-ip/eipalloc-0free0000000001"))].monthly_cost == pytest.approx(3.65)
    snapshot = found[("stale-snapshot", arn("ec2", "snapshot/snap-0old0000000000001"))]
    assert "200 days" in snapshot.detail and "no longer exists" in snapshot.detail and snapshot.monthly_cost == pytest.approx(10.0)
    assert found[("idle-compute", arn("ec2", "instance/i-0idle000000000001"))].monthly_cost == pytest.approx(0.0832 * 730, abs=0.01)
    # Stricter settings find nothing idle.
    assert not [r for r in recommend(store, settings=OptimisationSettings(cpu_threshold_percent=1.0), at=clock()) if r.kind == "idle-compute"]
    # Marking moves active CIs to the optimise state, with a change record naming why.
    assert mark_for_optimisation(timed_engine, list(found.values())) == 5
    assert store.get_cis([lb])[lb].lifecycle_state == "optimise"


def test_cost_estimates_overrides_and_rollups(store: SqliteStore, load: Loader, tmp_path: Path) -> None:
    prices = load_prices()
    rds = CI(arn("rds", "db:orders"), "aws.rds.db_instance", attributes={"instance_class": "db.m5.large", "allocated_storage_gb": 100})
    found = estimate(rds, prices)
    assert found is not None and found.monthly == pytest.approx(0.171 * 730 + 11.5, abs=0.01)
    assert estimate(CI("x", "aws.ec2.instance", attributes={"instance_type": "x9.mega"}), prices) is None
    gcp = CI("//compute.googleapis.com/projects/p/zones/z/instances/vm", "gcp.compute.instance",
             attributes={"machine_type": "https://www.googleapis.com/compute/v1/projects/p/zones/z/machineTypes/e2-medium"})
    assert estimate(gcp, prices) == estimate(gcp.copy(attributes={"machine_type": "e2-medium"}), prices)
    override = tmp_path / "prices.yaml"
    override.write_text("compute_hour:\n  aws.ec2.instance:\n    m5.large: 0.05\n", encoding="utf-8")
    cheaper = load_prices(override)
    web = CI("i", "aws.ec2.instance", attributes={"instance_type": "m5.large"})
    assert estimate(web, cheaper) is not None and estimate(web, cheaper).monthly == pytest.approx(36.5)  # type: ignore[union-attr]
    assert cheaper.compute_hour["aws.ec2.instance"]["t3.micro"] == prices.compute_hour["aws.ec2.instance"]["t3.micro"]

    load(
        [
            {"id": "svc-shop", "type": "service.business", "name": "Shop"},
            {"id": "svc-search", "type": "service.business", "name": "Search"},
            {**_instance("i-0web00000000000001"), "cost_centre": "CC-1", "environment": "production"},
            {**_instance("i-0dev00000000000001", "t3.micro"), "owner": "team-data", "cost_centre": "CC-2", "environment": "development"},
            {"id": arn("rds", "db:shared"), "type": "aws.rds.db_instance", "owner": "team-data", "cost_centre": "CC-2", "environment": "production",
             "attributes": {"instance_class": "db.t3.micro", "allocated_storage_gb": 20}},
        ],
        [
            {"from": "svc-shop", "type": "DEPENDS_ON", "to": arn("ec2", "instance/i-0web00000000000001")},
            {"from": arn("ec2", "instance/i-0web00000000000001"), "type": "DEPENDS_ON", "to": arn("rds", "db:shared")},
            {"from": "svc-search", "type": "DEPENDS_ON", "to": arn("rds", "db:shared")},
        ],
    )
    result = rollup(store)
    web_cost, dev_cost, db_cost = 0.096 * 730, 0.0104 * 730, 0.017 * 730 + 0.115 * 20
    assert result.total == pytest.approx(web_cost + dev_cost + db_cost, abs=0.02)
    assert result.by["owner"]["team-web"] == pytest.approx(web_cost, abs=0.01)
    assert result.by["cost_centre"]["CC-2"] == pytest.approx(dev_cost + db_cost, abs=0.01)
    assert result.by["environment"]["production"] == pytest.approx(web_cost + db_cost, abs=0.01)
    assert result.by["business_service"]["Shop"] == pytest.approx(web_cost + db_cost, abs=0.01)
    assert result.by["business_service"]["Search"] == pytest.approx(db_cost, abs=0.01)
    assert set(result.shared[arn("rds", "db:shared")]) == {"Shop", "Search"}
