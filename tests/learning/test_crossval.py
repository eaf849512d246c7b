"""Cross-validation by site of the whole training procedure, on the real pairs."""
from review.store import connect

from tests.conftest import needs_fixtures

pytestmark = needs_fixtures


def test_cross_validated_auc_on_the_real_pairs(pairs_db):
    from review.learning.crossval import cross_validate
    from review.learning.pairs import training_set

    ts = training_set(connect(pairs_db))
    result = cross_validate(ts, folds=3, seed=1, kinds=("features",), epochs=100)
    auc, low, high = result["roc_auc"]
    print(f"cross-validated ROC AUC (3 folds, 100 steps): {auc:.3f} ({low:.3f} to {high:.3f})")
    assert low <= auc <= high
    assert auc > 0.7
