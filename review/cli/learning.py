"""Commands of the learning wing: train, evaluate and rescore."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import settings
from ..errors import ReviewError
from .common import DB_HELP, Command, fraction, open_db, progress_bar


def add_train(sub) -> argparse.ArgumentParser:
    train = sub.add_parser("train", help="train a before/after change classifier on the "
                                         "reviewed detections")
    train.add_argument("--out", required=True, type=Path, help="the model to write (.keras); "
                       "its card is written beside it (.json)")
    train.add_argument("--base", default="44px_v2.6_rgb_ir",
                       help="published model whose convolutional trunk is tried as a start "
                            "(default 44px_v2.6_rgb_ir; 'none' to skip)")
    train.add_argument("--detector", default="48px_v3.2",
                       help="published detector whose view of the after image the features "
                            "kind adds (default 48px_v3.2; 'none' to leave it out)")
    train.add_argument("--seed", type=int, default=1)
    train.add_argument("--kinds", default="features",
                       help="kinds of model to train and compare (features, cnn, trunk; "
                            "default features); with several, the first is kept unless "
                            "another is clearly better on an inner validation split, and "
                            "every outer fold of the nested estimate trains each of them "
                            "(several minutes)")
    train.add_argument("--draws", type=int, default=10,
                       help="fold draws of the nested cross-validation the card's figures "
                            "come from (default 10; 1 with several kinds), and, up to 3, of "
                            "the labels-saved simulation")
    train.add_argument("--epochs", type=int, help="most epochs of the cnn and trunk kinds "
                       "(early stopping decides); the features kind has no epochs")
    train.add_argument("--precision", type=fraction, default=0.9,
                       help="precision the threshold is chosen for, by cross-validation "
                            "inside the detections trained on (default 0.9)")
    train.add_argument("--no-refit", dest="refit", action="store_false",
                       help="hold a quarter of the sites out of the model written, so "
                            "`evaluate` can score it on them (the card's figures stay the "
                            "nested ones)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--db", type=Path, help=DB_HELP)
    return train


def add_evaluate(sub) -> argparse.ArgumentParser:
    evaluate = sub.add_parser("evaluate", help="ROC AUC, precision and recall of a model on "
                                               "reviewed detections it did not train on")
    evaluate.add_argument("--model", required=True, help="model card id or .h5/.keras path")
    evaluate.add_argument("--format", choices=["text", "json"], default="text")
    evaluate.add_argument("--seed", type=int, default=1, help="seed of the bootstrap intervals")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.add_argument("--db", type=Path, help=DB_HELP)
    return evaluate


def add_rescore(sub) -> argparse.ArgumentParser:
    rescore = sub.add_parser("rescore", help="score pending detections with a trained model "
                                             "(beside the source's score) for the uncertain order")
    rescore.add_argument("--model", required=True, help="a trained before/after .keras model")
    rescore.add_argument("--quiet", action="store_true", help="no progress bar")
    rescore.add_argument("--db", type=Path, help=DB_HELP)
    return rescore


def cmd_train(args: argparse.Namespace) -> int:
    from ..learning.train import train

    if args.draws < 1:
        raise ReviewError(f"--draws {args.draws}: at least one fold draw is needed")
    db = open_db(args)
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    base = None if args.base.lower() == "none" else args.base
    detector = None if args.detector.lower() == "none" else args.detector
    with progress_bar("training", args.quiet) as progress:
        report = train(db, args.out, base=base, seed=args.seed, kinds=kinds, epochs=args.epochs,
                       detector=detector, draws=args.draws,
                       precision=args.precision, progress=progress,
                       database_name=str(args.db or settings.db_path()), refit=args.refit)
    print(report.summary())
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..detection.models import load_model
    from ..learning.evaluate import evaluate

    db = open_db(args)
    model = load_model(args.model)
    with progress_bar("scoring", args.quiet) as progress:
        result = evaluate(db, model, seed=args.seed, progress=progress)
    if args.format == "json":
        print(json.dumps({"model": result.model_id, **result.metrics,
                          "left_out_trained": result.left_out_trained,
                          "without_imagery": len(result.without_imagery)}))
    else:
        print(result.summary())
    return 0


def cmd_rescore(args: argparse.Namespace) -> int:
    from ..detection.models import load_model
    from ..learning.evaluate import rescore, rescore_summary

    db = open_db(args)
    model = load_model(args.model)
    with progress_bar("rescoring", args.quiet) as progress:
        counts = rescore(db, model, progress=progress)
    print(rescore_summary(counts))
    return 0


COMMANDS = {"train": Command(add_train, cmd_train), "evaluate": Command(add_evaluate, cmd_evaluate),
            "rescore": Command(add_rescore, cmd_rescore)}
