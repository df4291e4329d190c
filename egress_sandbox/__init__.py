"""An offline ACK cluster, MSE Ingress Controller, VPC/SLB/CS OpenAPIs and gateway data plane.

It serves real HTTP on loopback so that the unchanged SDKs, ``kubectl`` and ``curl`` work
against it, as moto and LocalStack do for AWS.
"""

__version__ = "0.1.0"
