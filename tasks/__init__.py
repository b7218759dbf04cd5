"""authorbot's steps: plain functions, each module ending with its Prefect task wrappers."""

import logging
import os

logging.getLogger(__name__).setLevel(logging.INFO)  # progress lines; see flows/__init__.py

# Before anything imports TensorFlow: transformers' TF classes need Keras 2 (tf-keras, see
# ../shared/STACK.md), and deprecation and CUDA chatter would bury our own messages.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and start its devices with file descriptor 2 sent to /dev/null: its C++
    start-up lines (CUDA probing, "failed call to cuInit") are printed before any log level applies."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
