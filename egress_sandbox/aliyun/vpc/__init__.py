"""Emulated VPC API 2016-04-28 (VPCs, vSwitches, NAT gateways, EIPs, SNAT entries)."""
