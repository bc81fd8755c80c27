"""The errors of the compliance part, below cmdb's own tree::

    CmdbError
    ├── ValidationError
    │   └── RuleError          a rule, price table, mapping or entitlement file that breaks its format
    ├── NotFound
    │   └── FindingNotFound    no finding with that key
    └── ComplianceError        anything else this part refuses (a bad waiver, a bad transition)
        └── WebhookError       a webhook could not be delivered after its retries
"""

from __future__ import annotations

from cmdb.errors import CmdbError, NotFound, ValidationError

__all__ = ["ComplianceError", "FindingNotFound", "RuleError", "WebhookError"]


class RuleError(ValidationError):
    hint = "fix the file or value named in the message"


class FindingNotFound(NotFound):
    hint = "list findings with 'cmdb findings --status all'"


class ComplianceError(CmdbError):
    hint = "check the command's arguments"


class WebhookError(ComplianceError):
    hint = "check the webhook URL and that the receiver answers 2xx"
