import numpy as np
import pytest

from s3prl_emo.data.labels import (
    all_other,
    annotator_classes,
    canonical_class,
    is_other,
    primary_plus_secondary,
    soft_labels,
)
from s3prl_emo.errors import InvalidInputError

CREMA = ["angry", "sad", "disgust", "fear", "neutral", "happy"]
IEMOCAP = ["frustrated", "angry", "sad", "disgust", "excited", "fear", "neutral", "surprise", "happy"]


def smoothed(counts, smoothing=0.05):
    """The published files' rule written independently: p = (1-a) q + a/K, a = s K/(K-1)."""
    counts = np.asarray(counts, dtype=float)
    k = len(counts)
    a = smoothing * k / (k - 1)
    return (1 - a) * counts / counts.sum() + a / k


def test_worked_example_from_the_published_crema_d_labels():
    p = soft_labels(["angry"] * 4 + ["happy"] * 6, CREMA)
    assert p.round(3).tolist() == [0.386, 0.01, 0.01, 0.01, 0.01, 0.574]


@pytest.mark.parametrize("k_classes", [IEMOCAP, CREMA, ["angry", "sad", "neutral", "happy"]])
def test_unanimous_gets_095_and_the_rest_share_005(k_classes):
    p = soft_labels([k_classes[0]] * 5, k_classes)
    assert p[0] == pytest.approx(0.95)
    assert p[1:] == pytest.approx(np.full(len(k_classes) - 1, 0.05 / (len(k_classes) - 1)))
    assert p.sum() == pytest.approx(1.0)


def test_multi_choice_annotations_count_one_vote_per_selected_class():
    votes = [["Neutral state", "Frustration"], "Frustration", ["Anger", "Frustration", "other"]]
    p = soft_labels(votes, IEMOCAP, aliases="iemocap")
    counts = np.zeros(len(IEMOCAP))
    counts[IEMOCAP.index("neutral")] = 1
    counts[IEMOCAP.index("frustrated")] = 3
    counts[IEMOCAP.index("angry")] = 1
    assert p == pytest.approx(smoothed(counts))


def test_other_votes_are_dropped_not_counted():
    assert soft_labels(["sad", "other", "Other", "xxx"], CREMA) == pytest.approx(soft_labels(["sad"], CREMA))


def test_case_insensitive_and_corpus_spellings():
    assert canonical_class("NEUTRAL", CREMA) == "neutral"
    assert canonical_class("Neutral state", IEMOCAP) == "neutral"
    assert canonical_class("neu", IEMOCAP) == "neutral"
    assert canonical_class("ang", IEMOCAP) == "angry"
    assert canonical_class("Happiness", CREMA) == "happy"
    assert canonical_class("Frustration", IEMOCAP) == "frustrated"
    assert canonical_class("other", IEMOCAP) is None


def test_one_letter_codes_follow_the_corpus_table():
    # "s" is sad in the MSP and CREMA-D tables; IEMOCAP's table does not know it.
    assert canonical_class("S", CREMA, aliases="crema-d") == "sad"
    assert canonical_class("s", IEMOCAP, aliases="iemocap") is None


def test_no_valid_vote_is_an_error_naming_the_problem():
    with pytest.raises(InvalidInputError, match="no vote"):
        soft_labels(["other", "xxx"], CREMA)
    with pytest.raises(InvalidInputError, match="at least 2 classes"):
        soft_labels(["sad"], ["sad"])
    with pytest.raises(InvalidInputError, match="unknown alias table"):
        soft_labels(["sad"], CREMA, aliases="nope")


@pytest.mark.parametrize("smoothing", [0.5, 0.7, 1.0, -0.1, float("nan")])
def test_smoothing_that_would_take_the_label_from_the_votes_is_refused(smoothing):
    # K = 2: at 0.5 a unanimous "sad" would get 0.5, no more than "happy".
    with pytest.raises(InvalidInputError, match=r"smoothing must be in \[0, \(K - 1\) / K\)"):
        soft_labels(["sad"], ["sad", "happy"], smoothing=smoothing)
    assert soft_labels(["sad"], ["sad", "happy"], smoothing=0.49)[0] > 0.5


def test_zero_smoothing_is_the_vote_distribution():
    assert soft_labels(["sad", ["sad", "happy"]], ["sad", "happy"], smoothing=0.0) == pytest.approx([2 / 3, 1 / 3])


# --- the policy functions every recipe declares --------------------------------------------

IMPROV_S = ["depressed", "frustrated", "angry", "sad", "disgust", "excited", "fear", "neutral", "surprise", "happy"]


def test_a_class_one_annotator_names_twice_counts_once():
    """One annotation is a set of classes, in every recipe: "Anger; Angry" (two spellings of one
    class) and a primary emotion repeated among the secondary ones give one vote each."""
    assert annotator_classes(["Anger", "angry", "Frustration"], IEMOCAP, "iemocap") == ("angry", "frustrated")
    assert soft_labels([["Anger", "Anger"], "Sadness"], IEMOCAP, aliases="iemocap") == pytest.approx(
        soft_labels(["Anger", "Sadness"], IEMOCAP, aliases="iemocap")
    )
    nnime = [
        "angry",
        "frustrated",
        "disappointed",
        "sad",
        "fear",
        "neutral",
        "surprise",
        "excited",
        "happy",
        "relax",
        "joy",
    ]
    assert soft_labels([["happy", "happiness"], "joy"], nnime, aliases="nnime") == pytest.approx(
        smoothed([0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1])
    )


def test_msp_secondary_is_primary_plus_secondary_as_published():
    """Evidence from the published IMPROV/Secondary/labels_consensus_1.csv row of
    MSP-IMPROV-S01A-F03-R-FF01 (its Primary row is 6 x angry + 1 x sad): 17 votes, the seven
    primary emotions plus ten secondary ones. Secondary votes without the primary emotion (10
    votes) do not give that row. The published files cannot show whether a rater who repeats
    the primary emotion among the secondary ones was counted twice (the raw lines are not
    public); the package counts a class once per rater everywhere, the rule ``soft_labels``
    states and the MSP readers already applied."""
    raters = [
        ("Angry", ["Frustrated", "Disgusted"]),
        ("Angry", ["Frustrated", "Surprised"]),
        ("Angry", ["Frustrated", "Disgusted"]),
        ("Angry", ["Frustrated"]),
        ("Angry", ["Frustrated", "Excited"]),
        ("Angry", ["Surprised"]),
        ("Sad", []),
    ]
    published = [0.005556, 0.283333, 0.338889, 0.061111, 0.116667, 0.061111, 0.005556, 0.005556, 0.116667, 0.005556]
    votes = [primary_plus_secondary(p, s, IMPROV_S, "msp-improv") for p, s in raters]
    assert soft_labels(votes, IMPROV_S, aliases="msp-improv") == pytest.approx(published, abs=1e-6)
    secondary_only = [s for _, s in raters if s]
    assert soft_labels(secondary_only, IMPROV_S, aliases="msp-improv") != pytest.approx(published, abs=1e-3)
    assert primary_plus_secondary("Angry", ["Frustrated", "Angry"], IMPROV_S, "msp-improv") == ("Angry", "Frustrated")


def test_other_and_exclusion_rules():
    assert [is_other(t) for t in ("Other", "other:生氣", "Other-bored, tired", "others")] == [True, True, True, False]
    assert all_other(["Other-calm", ["other", "bored"]], ["angry", "sad"])
    assert not all_other(["Other-calm", ["other", "Sad"]], ["angry", "sad"])


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["a.wav,0.5,0.5,Train", "b.wav,,1,Train"], r"line 3 \(b.wav\): empty or non-numeric class value"),
        (["a.wav,0.5,0.4,Train", "b.wav,x,1,Train"], r"line 2 \(a.wav\): class values sum to 0.9000"),
        (["a.wav,0.5,0.5,Train", "b.wav,1.5,-0.5,Train"], r"line 3 \(b.wav\): negative class value"),
    ],
)
def test_the_first_bad_distribution_is_named_by_line(tmp_path, rows, message):
    from s3prl_emo.data.layout import read_labels

    path = tmp_path / "labels_consensus_1.csv"
    path.write_text("\n".join(["FileName,angry,sad,Split_Set", *rows, "c.wav,0.2,0.8,Test"]) + "\n")
    with pytest.raises(InvalidInputError, match=message):
        read_labels(path, ["angry", "sad"])
    path.write_text("FileName,angry,sad,Split_Set\na.wav,0.2,0.8,Train\n")
    assert read_labels(path, ["angry", "sad"])[["angry", "sad"]].to_numpy().tolist() == [[0.2, 0.8]]
