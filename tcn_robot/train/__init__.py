"""The training engine and the methods built on it."""
