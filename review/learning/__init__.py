"""Learning: change models trained on the verdicts and the imagery they were based on.

Owns training (train), evaluating a model on held-out verdicts, rescoring the queue and
the embedding the Models page draws (evaluate). The layers of the models it builds live
in detection.pairnet, since detection must load them to score.

May import: the root modules, detection, judging and review_imagery.
"""
