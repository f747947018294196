"""Sampling responses and scoring them with models; how text becomes tokens."""
