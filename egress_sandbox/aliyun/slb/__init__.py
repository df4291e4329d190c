"""Emulated SLB (CLB) API 2014-05-15: the load balancers the MSE controller creates."""
