"""TensorFlow imported once and quietly: its pointless native chatter is dropped, every real
message is passed on, and the device the detector runs on is named."""
from review.detection.tensorflow_runtime import device_description, tensorflow


def test_tensorflow_chatter_is_dropped_and_everything_else_passed_on(capfd):
    import os

    from review.detection.tensorflow_runtime import tensorflow_chatter_dropped

    with tensorflow_chatter_dropped():
        os.write(2, b"E0000 node_def_util.cc:682] NodeDef mentions attribute use_unbounded\n")
        os.write(2, b"disk full while writing the model\n")
    assert capfd.readouterr().err == "disk full while writing the model\n"


def test_tensorflow_is_imported_once_and_the_device_is_named():
    tf = tensorflow()
    assert tensorflow() is tf
    gpus = tf.config.list_physical_devices("GPU")
    described = device_description()
    assert (described.startswith("GPU (") if gpus else described == "CPU"), described
