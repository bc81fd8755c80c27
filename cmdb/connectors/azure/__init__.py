"""Azure: Resource Manager (dedicated SDK clients plus Resource Graph) into the CMDB.

``cmdb sync azure [--subscription S ...]``; see :mod:`cmdb.connectors.azure.connector`.
"""

from cmdb.connectors.azure.connector import DEFAULT_ENDPOINT, AzureConnector, StaticTokenCredential, default_credential

__all__ = ["DEFAULT_ENDPOINT", "AzureConnector", "StaticTokenCredential", "default_credential"]
