"""The sandbox's control plane: inject faults, hold or advance transitions, read the audit log."""
