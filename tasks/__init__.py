"""authorbot's steps: plain functions, each module ending with its Prefect task wrappers."""

import logging
import os

logging.getLogger(__name__).setLevel(logging.INFO)  # progress lines; see flows/__init__.py

# Before anything imports TensorFlow: transformers' TF classes need Keras 2 (tf-keras, see
# ../shared/STACK.md), and deprecation and CUDA chatter would bury our own messages.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
