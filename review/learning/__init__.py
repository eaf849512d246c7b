"""Learning: change models trained on the verdicts and the imagery they were based on.

One job per module, each importing only those listed before it:

    pairs      which stored scenes a verdict was based on, the before/after chips cut from
               them, and the training set of reviewed detections
    splits     site groups, and the validation split and folds that keep a site whole
    metrics    ROC AUC, precision and recall with intervals that resample sites,
               thresholds, and whether one kind is clearly better
    selection  the features kind's logistic head and its penalty and threshold, chosen by
               cross-validation by site inside the detections it is given
    nested     nested cross-validation by site: every figure a trained model's card gives
    label_curve  the labels-saved simulation: uncertain order against random
    fitting    the kinds of model trained on pairs, seeded, and the choice between them
    crossval   the several-kinds procedure as the nested estimate's outer folds run it
    train      the train entry point: a new model's name, the model and its card
    evaluate   a model on held-out verdicts, rescoring the queue, the embedding the Models
               page draws
    worker     training and evaluation in a process of their own, with progress sent back,
               so the dashboard's process keeps its TensorFlow settings and seeds

The layers of the models it builds live in detection.pairnet, since detection must load
them to score. TensorFlow, Keras and scikit-learn are imported inside the functions that
need them, so the CLI and the dashboard import these modules without paying for them;
importing them changes nothing process-wide (training sets TF_DETERMINISTIC_OPS, op
determinism and the seeds only while it runs: fitting.deterministic).

May import: the root modules, detection, judging and review_imagery.
"""
