"""TensorFlow, imported once and quietly, and the device it runs on.

TensorFlow's native libraries write start-up chatter straight to file descriptor 2; the
detection engine, the pair network and training all import it through `tensorflow()` here
so that a one-line CLI error is not buried.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
from contextlib import contextmanager

# Before TensorFlow is imported: its Python-side logging below warnings stays quiet.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_tf = None


@contextmanager
def stderr_captured():
    """File descriptor 2 sent to a temporary file while the block runs (native libraries
    write there directly, past sys.stderr); yields a list that holds what was written
    once the block has ended and descriptor 2 is back."""
    sys.stderr.flush()
    saved = os.dup(2)
    written: list[str] = []
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield written
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            written.append(captured.read().decode(errors="replace"))


def tensorflow():
    """Import TensorFlow once, keeping its C++ start-up chatter off the terminal.

    TensorFlow's native libraries log (CUDA probing, oneDNN notices) straight to file
    descriptor 2 whatever TF_CPP_MIN_LOG_LEVEL says; it would bury a one-line CLI error.
    What it printed is shown again if the import fails.
    """
    global _tf
    if _tf is not None:
        return _tf
    written: list[str] = []
    try:
        with stderr_captured() as written:
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")
    except BaseException:
        sys.stderr.write("".join(written))
        raise
    _tf = tf
    return tf


# Native log lines TensorFlow writes that tell a user nothing (seen with TensorFlow 2.21).
_TENSORFLOW_CHATTER = re.compile(
    r"NodeDef mentions attribute|All log messages before absl::InitializeLog|"
    r"oneDNN custom operations|cudart_stub|Could not find cuda drivers")


@contextmanager
def tensorflow_chatter_dropped():
    """While the block runs, TensorFlow's pointless native log lines (a tf.data graph
    notice at every Keras fit, for one) are kept off file descriptor 2; everything else
    written there is passed on when the block ends, so no real message is lost."""
    written: list[str] = []
    try:
        with stderr_captured() as written:
            yield
    finally:
        kept = [line for line in "".join(written).splitlines(True)
                if not _TENSORFLOW_CHATTER.search(line)]
        if kept:
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


def device_description() -> str:
    """'GPU (NVIDIA H100 ...)' when TensorFlow sees one, else 'CPU'."""
    tf = tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    details = tf.config.experimental.get_device_details(gpus[0])
    return f"GPU ({details.get('device_name', gpus[0].name)})"
