"""Emulated CS (ACK) API 2015-12-15 (ROA): cluster detail, add-ons, tasks, kubeconfig."""
