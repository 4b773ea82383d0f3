"""Scoring a classifier or regressor on one part of the data, and the classical baseline beside
it: accuracy, macro-F1 and the confusion matrix for classes, RMSE and Pearson's r for numbers
(`rnnkit.metrics` has the formulas)."""

from __future__ import annotations

import numpy as np

from rnnkit.metrics import accuracy, confusion_matrix, macro_f1, pearson_r, rmse

__all__ = ["format_scores", "predictions", "run_baseline", "score", "scores_of"]


def predictions(model, part) -> np.ndarray:
    return model.predict(part.inputs, part.mask)


def score(model, part, metadata) -> dict:
    return scores_of(part.targets, predictions(model, part), metadata["task"] == "regression", metadata)


def scores_of(truth, predicted, regression: bool, metadata) -> dict:
    if regression:
        return {"rmse": rmse(truth, predicted), "pearson_r": pearson_r(truth, predicted)}
    classes = len(metadata["labels"]) if metadata.get("labels") else None
    return {"accuracy": accuracy(truth, predicted), "macro_f1": macro_f1(truth, predicted),
            "confusion": confusion_matrix(truth, np.asarray(predicted), classes).tolist()}


def format_scores(scores: dict, regression: bool) -> str:
    if regression:
        return f"RMSE {scores['rmse']:.3f}, Pearson r {scores['pearson_r']:.3f}"
    return f"accuracy {scores['accuracy']:.1%}, macro-F1 {scores['macro_f1']:.1%}"


def run_baseline(train, validation, test, metadata):
    from .baselines import feature_baseline, text_baseline

    regression = metadata["task"] == "regression"
    if metadata["input"] == "text":
        return text_baseline(train.texts, train.targets, validation.texts, validation.targets, test.texts,
                             regression=regression)
    return feature_baseline(train.inputs, train.targets, validation.inputs, validation.targets, test.inputs,
                            regression=regression)
