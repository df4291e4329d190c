"""The emulated MSE Ingress Controller and the MseIngressConfig CRD."""
