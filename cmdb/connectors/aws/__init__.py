"""Discover AWS accounts, regions and their resources with boto3.

``AwsConnector`` sweeps each account's global services and each region into
scopes ``aws:<account>:global`` and ``aws:<account>:<region>``; see
``cmdb.connectors.aws.connector`` for how failures keep a sweep incomplete and
``cmdb/vocab/aws.yaml`` for the CI types and attributes it fills.
"""

from cmdb.connectors.aws.connector import AwsConnector
from cmdb.connectors.aws.tagmap import TagMap

__all__ = ["AwsConnector", "TagMap"]
