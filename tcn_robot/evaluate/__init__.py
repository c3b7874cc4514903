"""Embedding evaluation the way the TCN paper does it."""
