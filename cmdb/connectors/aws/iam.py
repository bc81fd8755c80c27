"""Identity: the account, IAM roles (and who may assume them), instance profiles.

    (:InstanceProfile)-[:DEPENDS_ON]->(:Role)

Who can assume what is read from each role's trust policy into the role's
``trusted_*`` attributes; what uses a role (instances through their profile,
functions, EKS clusters and node groups) points at it with DEPENDS_ON.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from cmdb.connectors.aws.base import GLOBAL, Context, Out, items, tag_dict

__all__ = ["GLOBAL_UNITS", "trust"]

_ACCOUNT = re.compile(r"^(?:arn:aws[a-z-]*:iam::)?(\d{12})(?::|$)")


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def trust(document: Any) -> dict[str, list[str]]:
    """Who a trust policy lets assume the role: principals, services, accounts, federated providers."""
    if isinstance(document, str):
        document = json.loads(unquote(document))
    principals: list[str] = []
    services: list[str] = []
    federated: list[str] = []
    for statement in _list_statements(document):
        if statement.get("Effect") != "Allow":
            continue
        actions = _list(statement.get("Action"))
        if actions and not any(a.lower().startswith("sts:assumerole") or a in ("*", "sts:*") for a in actions):
            continue
        principal = statement.get("Principal")
        if principal == "*":
            principals.append("*")
            continue
        if not isinstance(principal, dict):
            continue
        principals.extend(_list(principal.get("AWS")))
        services.extend(_list(principal.get("Service")))
        federated.extend(_list(principal.get("Federated")))
    accounts = []
    for principal in principals:
        match = _ACCOUNT.match(principal)
        if match:
            accounts.append(match.group(1))
    return {
        "principals": list(dict.fromkeys(principals + services + federated)),
        "services": list(dict.fromkeys(services)),
        "accounts": list(dict.fromkeys(accounts)),
        "federated": list(dict.fromkeys(federated)),
        "anyone": ["*"] if "*" in principals else [],
    }


def _list_statements(document: Any) -> list[dict[str, Any]]:
    if not isinstance(document, dict):
        return []
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    return [s for s in statements if isinstance(s, dict)]


def account(ctx: Context, out: Out) -> None:
    aliases = list(items(ctx.client("iam"), "list_account_aliases", "AccountAliases[]"))
    out.ci(
        ctx.place.arn("iam", "root", region=""),
        "aws.account",
        aliases[0] if aliases else ctx.place.account,
        region=GLOBAL,
        attributes={"account_id": ctx.place.account, "partition": ctx.place.partition},
    )


def roles(ctx: Context, out: Out) -> None:
    client = ctx.client("iam")
    own = ctx.place.account
    listed = list(items(client, "list_roles", "Roles[]"))

    def role_tags(role: dict[str, Any]) -> dict[str, str]:
        return tag_dict(role.get("Tags")) or tag_dict(
            list(items(client, "list_role_tags", "Tags[]", RoleName=role["RoleName"])))

    for role, tags in zip(listed, ctx.each(role_tags, listed), strict=True):
        if isinstance(tags, Exception):
            raise tags
        arn = role["Arn"]
        trusted = trust(role.get("AssumeRolePolicyDocument") or {})
        created = role.get("CreateDate")
        out.ci(
            arn,
            "aws.iam.role",
            role["RoleName"],
            tags=tags,
            region=GLOBAL,
            attributes={
                "role_name": role["RoleName"],
                "trusted_principals": trusted["principals"],
                "trusted_services": trusted["services"],
                "trusted_accounts": trusted["accounts"],
                "trusted_federated": trusted["federated"],
                "cross_account": bool(trusted["anyone"]) or any(a != own for a in trusted["accounts"]),
                "max_session_s": role.get("MaxSessionDuration"),
                "path": role.get("Path", "/"),
                "create_date": created.isoformat() if hasattr(created, "isoformat") else str(created or ""),
            },
        )


def instance_profiles(ctx: Context, out: Out) -> None:
    for profile in items(ctx.client("iam"), "list_instance_profiles", "InstanceProfiles[]"):
        arn = profile["Arn"]
        role_arns = [r["Arn"] for r in profile.get("Roles", []) if r.get("Arn")]
        out.ci(
            arn,
            "aws.iam.instance_profile",
            profile["InstanceProfileName"],
            tags=tag_dict(profile.get("Tags")),
            region=GLOBAL,
            attributes={"instance_profile_name": profile["InstanceProfileName"], "role_arns": role_arns,
                        "path": profile.get("Path", "/")},
        )
        for role in role_arns:
            out.rel(arn, "DEPENDS_ON", role, "Roles[].Arn", role)


GLOBAL_UNITS = [
    ("iam", "account", account),
    ("iam", "roles", roles),
    ("iam", "instance_profiles", instance_profiles),
]
