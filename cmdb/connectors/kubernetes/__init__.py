"""Kubernetes: clusters from kubeconfig contexts, swept through the official client."""

from cmdb.connectors.kubernetes.connector import ClusterTarget, KubernetesConnector

__all__ = ["ClusterTarget", "KubernetesConnector"]
