"""GCP: Cloud Asset Inventory (live, or export files) into the CMDB.

``cmdb sync gcp --project P`` (or ``--folder``/``--organization``, or
``--export-file``); see :mod:`cmdb.connectors.gcp.connector`.
"""

from cmdb.connectors.gcp.connector import GcpConnector, GcpExportConnector, asset_client

__all__ = ["GcpConnector", "GcpExportConnector", "asset_client"]
