"""The self-supervised pretext methods the TCN paper compares against, each training the shared
``EmbeddingNet`` on the engine (``train/engine.py``); registered in ``methods.py``."""
