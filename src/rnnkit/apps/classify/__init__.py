"""`rnnkit classify`: many-to-one classification and regression of whole sequences (movie reviews,
digits read row by row, a TSV/CSV of labelled texts), with a TF-IDF or pixel baseline beside it.
Stands on recurrent (padding masks), layers, train.Trainer, data.buckets, data.digits, metrics.
In Python: the scikit-learn estimators `RecurrentClassifier` and `RecurrentRegressor`
(`estimator.py`), imported on first use, so that the command line never imports scikit-learn."""

__all__ = ["RecurrentClassifier", "RecurrentRegressor"]


def __getattr__(name: str):
    if name in __all__:
        from . import estimator

        return getattr(estimator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
