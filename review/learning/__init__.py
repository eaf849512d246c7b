"""Learning: change models trained on the verdicts and the imagery they were based on.

One job per module, each importing only those listed before it:

    pairs      which stored scenes a verdict was based on, the before/after chips cut from
               them, and the training set of reviewed detections
    splits     site groups, and the validation split and folds that keep a site whole
    metrics    ROC AUC, precision and recall with bootstrap intervals, thresholds, and
               whether one kind is clearly better (review.statistics.bootstrap)
    fitting    the kinds of model trained on pairs, seeded, and the choice between them
    train      the train entry point: a new model's name, the model and its card
    crossval   cross-validation of the whole training procedure by site
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
