"""Emulated Alibaba Cloud OpenAPIs on one endpoint: VPC, SLB and CS."""
