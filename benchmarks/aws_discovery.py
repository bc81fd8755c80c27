"""AWS discovery at scale: seed a moto estate of 5,000+ resources, discover it, time it.

Runs moto's server in a subprocess (so its work does not share this process's
GIL), seeds it through boto3, then runs the AWS connector twice through the
real sync engine into an embedded store on disk:

- API time: the connector's sweep alone (every call, page and transform);
- store time: the sync engine applying those events (diff, write, changes);
- a re-sync of the unchanged estate (API + store), which must change nothing.

    python benchmarks/aws_discovery.py [--instances 700] [--regions eu-west-1,us-east-1]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import boto3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "MOTO_EC2_LOAD_DEFAULT_AMIS": "false", "MOTO_IAM_LOAD_MANAGED_POLICIES": "false"}
    server = [sys.executable, "-c", "from moto.server import main; main()", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(server, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).read()
            return process, url
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("moto's server did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc), 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def _tags(name: str, n: int) -> list[dict[str, str]]:
    teams = ("payments", "search", "platform", "data", "identity")
    return [{"Key": "Name", "Value": name}, {"Key": "Owner", "Value": f"team-{teams[n % len(teams)]}"},
            {"Key": "CostCenter", "Value": f"cc-{100 + n % 20}"}, {"Key": "Environment", "Value": "production"}]


def seed_region(region: str, instances: int) -> int:
    """One region's estate; returns how many resources it made."""
    ec2 = boto3.client("ec2", region_name=region)
    made = 0
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{n}.0/22"[:-3] + "/24",
                                 AvailabilityZone=f"{region}{'abc'[n % 3]}")["Subnet"]["SubnetId"] for n in range(4)]
    made += 1 + len(subnets)
    groups = []
    for n in range(50):
        group = ec2.create_security_group(GroupName=f"sg-{n}", Description=f"tier {n}", VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
        groups.append(group)
    made += len(groups)
    ids: list[str] = []
    per_call = 100
    for start in range(0, instances, per_call):
        count = min(per_call, instances - start)
        n = start // per_call
        reply = ec2.run_instances(ImageId="ami-0abcdef1234567890", MinCount=count, MaxCount=count,
                                  InstanceType="t3.small", SubnetId=subnets[n % len(subnets)],
                                  SecurityGroupIds=[groups[n % len(groups)]],
                                  TagSpecifications=[{"ResourceType": "instance", "Tags": _tags(f"web-{n}", n)}])
        ids.extend(i["InstanceId"] for i in reply["Instances"])
    made += 3 * len(ids)  # each instance with its root volume and network interface
    for n in range(100):
        volume = ec2.create_volume(Size=20, AvailabilityZone=f"{region}a", Encrypted=n % 2 == 0)["VolumeId"]
        if n < 50:
            ec2.create_snapshot(VolumeId=volume)
    made += 150
    elbv2 = boto3.client("elbv2", region_name=region)
    for n in range(2):
        lb = elbv2.create_load_balancer(Name=f"alb-{n}", Subnets=subnets[:2], SecurityGroups=[groups[0]])[
            "LoadBalancers"][0]["LoadBalancerArn"]
        for m in range(10):
            tg = elbv2.create_target_group(Name=f"tg-{n}-{m}", Protocol="HTTP", Port=80, VpcId=vpc)[
                "TargetGroups"][0]["TargetGroupArn"]
            elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": i} for i in ids[m * 5 : m * 5 + 5]])
            if m == 0:
                elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                                      DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])
        made += 12
    dynamodb = boto3.client("dynamodb", region_name=region)
    for n in range(50):
        dynamodb.create_table(TableName=f"table-{region}-{n}", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                              BillingMode="PAY_PER_REQUEST")
    made += 50
    lam = boto3.client("lambda", region_name=region)
    for n in range(20):
        lam.create_function(FunctionName=f"fn-{n}", Runtime="python3.12", Handler="handler.handler",
                            Role="arn:aws:iam::123456789012:role/fn-role-0", Code={"ZipFile": _zip()},
                            Environment={"Variables": {"TABLE": f"table-{region}-{n}"}})
    made += 20
    return made


def seed_global(region: str) -> int:
    iam = boto3.client("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    for n in range(300):
        iam.create_role(RoleName=f"fn-role-{n}", AssumeRolePolicyDocument=trust)
    s3 = boto3.client("s3", region_name=region)
    for n in range(50):
        s3.create_bucket(Bucket=f"bench-bucket-{n}", CreateBucketConfiguration={"LocationConstraint": region})
    route53 = boto3.client("route53")
    zone = route53.create_hosted_zone(Name="bench.example.com", CallerReference="bench")["HostedZone"]["Id"]
    changes = [{"Action": "CREATE", "ResourceRecordSet": {"Name": f"host-{n}.bench.example.com", "Type": "A",
                                                          "TTL": 300, "ResourceRecords": [{"Value": f"10.1.{n // 250}.{n % 250}"}]}}
               for n in range(500)]
    route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})
    return 300 + 50 + 1 + 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=700, help="EC2 instances per region")
    parser.add_argument("--regions", default="eu-west-1,us-east-1")
    args = parser.parse_args()
    regions = [r for r in args.regions.split(",") if r]

    process, url = start_moto()
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="AKIAEXAMPLEKEY000001",
                      AWS_SECRET_ACCESS_KEY="example", AWS_DEFAULT_REGION=regions[0], AWS_EC2_METADATA_DISABLED="true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    from cmdb.connectors.aws import AwsConnector
    from cmdb.store import SqliteStore
    from cmdb.sync import SyncEngine

    try:
        started = time.monotonic()
        resources = seed_global(regions[0]) + sum(seed_region(region, args.instances) for region in regions)
        print(f"seeded {resources:,} resources in {len(regions)} regions in {time.monotonic() - started:.1f}s")

        with tempfile.TemporaryDirectory() as folder:
            store = SqliteStore(Path(folder) / "cmdb.db")
            engine = SyncEngine(store)
            for label in ("first sync", "re-sync"):
                connector = AwsConnector(regions=regions)
                started, moto_cpu = time.monotonic(), cpu_seconds(process.pid)
                events: list[Any] = list(connector.sweep())
                api = time.monotonic() - started
                moto_cpu = cpu_seconds(process.pid) - moto_cpu
                started = time.monotonic()
                report = engine.apply_events("aws", events, actor="benchmark")
                store_time = time.monotonic() - started
                cis = report.counts["seen"]
                rels = sum(len(e.relationships) for e in events if hasattr(e, "relationships"))
                total = api + store_time
                print(f"{label}: {cis:,} CIs, {rels:,} relationships, status {report.run.status}, "
                      f"problems {len(report.problems)}")
                print(f"  discovery {total:.1f}s = API {api:.1f}s + store {store_time:.1f}s; "
                      f"{cis / total:,.0f} CIs/s overall, {cis / api:,.0f} CIs/s API, {cis / store_time:,.0f} CIs/s store")
                print(f"  of the API time, moto's server used {moto_cpu:.1f}s of CPU answering")
                print(f"  counts: created {report.counts['created']:,}, updated {report.counts['updated']:,}, "
                      f"unchanged {report.counts['unchanged']:,}, stale {report.counts['stale']:,}")
                slowest = sorted(connector.timings.items(), key=lambda kv: -kv[1])[:5]
                print("  slowest units: " + ", ".join(f"{scope.split(':')[-1]}/{unit} {t:.1f}s"
                                                      for (scope, unit), t in slowest))
            store.close()
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
