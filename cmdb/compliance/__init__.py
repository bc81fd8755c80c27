"""Compliance, lifecycle, optimisation, licences and cost over the CMDB graph.

The public surface other parts read::

    from cmdb.compliance import open_findings, evaluate
    open_findings(store, ci_ids=["arn:aws:s3:::logs"])   # open findings, most severe first

Modules: ``rules`` (declarative, versioned rules in ``rules/*.yaml``),
``checks`` (named checks rules may call), ``findings`` (evaluation and the
stored findings), ``classification``, ``lifecycle``, ``optimisation``,
``metrics``, ``licences``, ``cost``, ``waivers``, ``webhooks``,
``reconciliation``, ``contracts``, ``reports`` and ``cli``.
"""

from __future__ import annotations

from cmdb.compliance.errors import ComplianceError, FindingNotFound, RuleError, WebhookError
from cmdb.compliance.findings import EvaluationReport, Finding, Waiver, evaluate, list_findings, open_findings
from cmdb.compliance.rules import Control, Rule, load_rules

__all__ = [
    "ComplianceError",
    "Control",
    "EvaluationReport",
    "Finding",
    "FindingNotFound",
    "Rule",
    "RuleError",
    "Waiver",
    "WebhookError",
    "evaluate",
    "list_findings",
    "load_rules",
    "open_findings",
]
