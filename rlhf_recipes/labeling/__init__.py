"""Proxy and gold labelers, and how scored responses become preference pairs."""
