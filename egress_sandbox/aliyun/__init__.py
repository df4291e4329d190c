"""Emulated Alibaba Cloud OpenAPIs: VPC 2016-04-28, SLB 2014-05-15 and CS 2015-12-15 on one endpoint."""
