"""Emulated kube-apiserver: an object store with watch, and the HTTP API kubectl and clients use."""
