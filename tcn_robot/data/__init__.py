"""Recorded episodes on disk, the recorder, the frame cache and the torch datasets."""
