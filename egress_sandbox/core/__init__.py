"""Pieces every emulated product shares: seeded randomness, IDs, time and scheduling."""
