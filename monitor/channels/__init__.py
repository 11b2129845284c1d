"""Delivery channels, one module each (a placeholder package on this branch: the
registry and the existing channels arrive with the notify -> channels move)."""
