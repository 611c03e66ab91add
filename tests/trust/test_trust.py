"""Trust axes as pure functions, checked against fairlearn and independent NumPy computations."""

import numpy as np
import pytest
import torch
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

from s3prl_emo import trust
from s3prl_emo.errors import InvalidInputError
from s3prl_emo.trust.calibration import apply_temperature, soft_log_likelihood
from s3prl_emo.trust.profile import profile

CLASSES = ["angry", "sad", "neutral", "happy"]


def _dirichlet(rng, n, k, alpha=1.0):
    return rng.dirichlet(np.full(k, alpha), size=n)


@pytest.fixture
def scored():
    rng = np.random.default_rng(3)
    n = 200
    return {
        "probs": _dirichlet(rng, n, 4),
        "soft": _dirichlet(rng, n, 4, 0.5),
        "gender": rng.choice(["Female", "Male"], size=n),
        "speaker": rng.choice([f"s{i}" for i in range(6)], size=n),
    }


def test_fairness_matches_fairlearn_and_a_numpy_computation(scored):
    out = trust.fairness(scored["probs"], scored["soft"], scored["gender"], CLASSES, speakers=scored["speaker"])
    truth, pred = scored["soft"] > 0.25, scored["probs"] > 0.25
    g = scored["gender"]
    eods, dpds = [], []
    for j, name in enumerate(CLASSES):
        y, p = truth[:, j], pred[:, j]
        tpr = [p[(g == s) & y].mean() for s in ("Female", "Male")]
        fpr = [p[(g == s) & ~y].mean() for s in ("Female", "Male")]
        rate = [p[g == s].mean() for s in ("Female", "Male")]
        eod, dpd = max(abs(tpr[0] - tpr[1]), abs(fpr[0] - fpr[1])), abs(rate[0] - rate[1])
        assert out["per_class"][name]["equalized_odds_difference"] == pytest.approx(eod)
        assert out["per_class"][name]["demographic_parity_difference"] == pytest.approx(dpd)
        assert eod == pytest.approx(equalized_odds_difference(y, p, sensitive_features=g))
        assert dpd == pytest.approx(demographic_parity_difference(y, p, sensitive_features=g))
        eods.append(eod)
        dpds.append(dpd)
    assert out["macro"]["equalized_odds_difference"] == pytest.approx(np.mean(eods))
    assert out["macro"]["demographic_parity_difference_max"] == pytest.approx(np.max(dpds))
    assert 0 < out["macro"]["equalized_odds_difference"] < 1
    assert out["speakers"]["worst_speaker"] in set(scored["speaker"])


def test_trustser_equality_of_opportunity_on_a_worked_example():
    # true class 0: F predicts 0,0; M predicts 0,1 -> TV 0.5. true class 1: both predict 1 -> 0. Mean 0.25.
    soft = np.array([[0.9, 0.1]] * 4 + [[0.1, 0.9]] * 2)
    probs = np.array([[0.8, 0.2], [0.8, 0.2], [0.8, 0.2], [0.2, 0.8], [0.3, 0.7], [0.3, 0.7]])
    groups = ["F", "F", "M", "M", "F", "M"]
    out = trust.fairness(probs, soft, groups, ["a", "b"])
    assert out["multiclass_equality_of_opportunity"] == pytest.approx(0.25)


def test_fairness_needs_two_groups(scored):
    with pytest.raises(InvalidInputError, match="two groups"):
        trust.fairness(scored["probs"], scored["soft"], ["Female"] * 200, CLASSES)


def _ece_loop(prob, target, n_bins):
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        inside = (prob >= lo) & ((prob < hi) if b < n_bins - 1 else (prob <= hi))
        if inside.any():
            total += inside.sum() / len(prob) * abs(prob[inside].mean() - target[inside].mean())
    return total


def test_calibration_matches_a_loop_over_bins_and_numpy_brier(scored):
    out = trust.calibration(scored["probs"], scored["soft"], CLASSES, n_bins=10)
    truth = (scored["soft"] > 0.25).astype(float)
    soft_ece = [_ece_loop(scored["probs"][:, j], scored["soft"][:, j], 10) for j in range(4)]
    hard_ece = [_ece_loop(scored["probs"][:, j], truth[:, j], 10) for j in range(4)]
    assert list(out["ece_per_class"].values()) == pytest.approx(soft_ece)
    assert out["ece_macro"] == pytest.approx(np.mean(soft_ece))
    assert out["ece_macro_binarized"] == pytest.approx(np.mean(hard_ece))
    assert out["brier"] == pytest.approx(np.mean(np.sum((scored["probs"] - scored["soft"]) ** 2, axis=1)))
    assert out["n_bins"] == 10
    assert out["n_items"] == 200


def test_temperature_recovers_overconfidence_and_never_lowers_dev_likelihood():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 4)) * 1.5
    soft = apply_temperature(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), 1.0)
    overconfident = apply_temperature(soft, 1 / 3)  # logits x 3
    out = trust.calibration(overconfident, soft, CLASSES, dev_probs=overconfident, dev_soft_labels=soft)
    assert out["temperature"] == pytest.approx(3.0, rel=0.02)
    assert out["dev_log_likelihood_after_scaling"] >= out["dev_log_likelihood"]
    assert out["ece_macro_after_scaling"] < out["ece_macro"]
    for seed in range(5):  # already calibrated or random: still never worse on dev
        r = np.random.default_rng(seed)
        probs, labels = _dirichlet(r, 50, 4), _dirichlet(r, 50, 4)
        res = trust.calibration(probs, labels, CLASSES, dev_probs=probs, dev_soft_labels=labels)
        assert soft_log_likelihood(apply_temperature(probs, res["temperature"]), labels) >= soft_log_likelihood(
            probs, labels
        )


def test_privacy_probe_finds_the_leaking_layer_and_stays_near_chance_without_one():
    rng = np.random.default_rng(1)

    def split(n, leak):
        gender = rng.choice(["Female", "Male"], size=n)
        x = rng.normal(size=(n, 3, 8))
        x[:, 2, 0] += leak * (gender == "Male")
        return x, gender

    data = [split(n, 3.0) for n in (120, 60, 60)]
    out = trust.privacy(data[0][0], data[0][1], data[1][0], data[1][1], data[2][0], data[2][1])
    assert out["accuracy"] > 0.85
    assert out["uar"] > 0.85
    assert out["probes"]["all_layers"]["layer_weights"][2] == max(out["probes"]["all_layers"]["layer_weights"])
    blind = [split(n, 0.0) for n in (120, 60, 60)]
    out = trust.privacy(blind[0][0], blind[0][1], blind[1][0], blind[1][1], blind[2][0], blind[2][1])
    assert out["uar"] < 0.75
    with pytest.raises(InvalidInputError, match="absent from train"):
        trust.privacy(data[0][0], data[0][1], data[1][0], data[1][1], data[2][0], np.array(["X"] * 60))


class _ToyNet(torch.nn.Module):
    """A small convolutional classifier of raw waveforms of any length."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv1d(1, 8, 64, stride=16)
        self.out = torch.nn.Linear(8, 3)

    def forward(self, wavs):
        pooled = [torch.tanh(self.conv(w.view(1, 1, -1))).mean(dim=-1) for w in wavs]
        return self.out(torch.cat(pooled)) * 4


def test_attacks_are_monotone_in_snr_and_hit_the_target_snr():
    net = _ToyNet().eval()
    rng = np.random.default_rng(0)
    wavs = [
        (rng.uniform(0.01, 0.5) * np.sin(np.arange(n) * rng.uniform(0.01, 0.3)) + 0.02 * rng.normal(size=n)).astype(
            np.float32
        )
        for n in rng.integers(1_600, 8_000, size=30)
    ]
    with torch.no_grad():
        soft = torch.softmax(net([torch.as_tensor(w) for w in wavs]), dim=-1).double().numpy()
    snrs = [40, 20, 10, 0]
    out = trust.safety(net, wavs, soft, snrs, pgd_steps=3)
    assert out["n_correct"] == 30
    for method in ("fgsm", "pgd"):
        rates = [out[method][f"{s}"]["success_rate"] for s in snrs]
        assert rates == sorted(rates), (method, rates)
        assert rates[-1] > 0, "the strongest attack should break something on this model"
        for s in snrs:
            entry = out[method][f"{s}"]
            assert entry["n_attacked"] == 30
            assert abs(entry["achieved_snr_db_min"] - s) < 0.5
            assert abs(entry["achieved_snr_db_max"] - s) < 0.5
    assert out["pgd"]["0"]["success_rate"] >= out["fgsm"]["0"]["success_rate_at_budget"] - 0.1


def test_only_correct_items_are_attacked():
    net = _ToyNet().eval()
    wavs = [np.sin(np.arange(4_000) * f).astype(np.float32) * 0.1 for f in (0.02, 0.05, 0.1, 0.2)]
    with torch.no_grad():
        soft = torch.softmax(net([torch.as_tensor(w) for w in wavs]), dim=-1).double().numpy()
    wrong = soft.copy()
    for i in (0, 1):  # all weight on the class the model rates lowest: these two are wrong
        wrong[i] = np.eye(3)[soft[i].argmin()]
    expected = 2
    assert trust.safety(net, wavs, wrong, [30], methods=["fgsm"])["n_correct"] == expected


def _fbank_recognizer():
    from s3prl import hub
    from s3prl.upstream.interfaces import Featurizer

    from s3prl_emo.data.fold import Normalizer
    from s3prl_emo.downstream.model import EmotionHead
    from s3prl_emo.inference.recognizer import EmotionRecognizer

    upstream = hub.fbank()
    featurizer = Featurizer(upstream, upstream_device="cpu")
    modelrc = {"select": "DeepModel", "projector_dim": 32, "DeepModel": {"model_type": "CNNSelfAttention",
               "hidden_dim": 16, "kernel_size": 5, "padding": 2, "pooling": 5, "dropout": 0.4}}  # fmt: skip
    head = EmotionHead(featurizer.output_dim, 4, modelrc)
    return EmotionRecognizer(upstream, featurizer, head, CLASSES, Normalizer(0.0, 1.0), 10.0).eval()


def test_fbank_flops_are_linear_in_input_length():
    from s3prl_emo.trust import model_io
    from s3prl_emo.trust.sustainability import count_flops

    model = _fbank_recognizer()
    flops = [count_flops(lambda w: model_io.logits(model, w), s)["flops"] for s in (2.0, 4.0, 6.0)]
    assert flops[0] > 0
    assert flops[2] - flops[1] == pytest.approx(flops[1] - flops[0], rel=0.01)
    out = trust.sustainability(model, lambda w: model_io.logits(model, w), seconds=6.0)
    assert out["macs_6s"] * 2 == out["flops_6s"] == flops[2]
    assert out["flops_6s_per_part"]["upstream"] > 0
    assert out["flops_6s_per_part"]["head"] > 0
    assert out["upstream_params"] == 0
    assert out["head_params"] > 0
    assert out["seconds_per_audio_second"] > 0


def test_profile_scales_outward_is_better():
    report = {
        "performance": {"macro_f1": 0.6},
        "calibration": {"ece_macro": 0.05},
        "fairness": {"macro": {"equalized_odds_difference": 0.2}},
        "privacy": {"uar": 0.9},
        "safety": {"fgsm": {"45": {"success_rate": 0.3}, "25": {"success_rate": 0.8}}},
        "sustainability": {"macs_6s": 1e9},
    }
    prof = profile(report)
    assert prof["fairness"]["scaled"] == pytest.approx(0.8)
    assert prof["privacy"]["scaled"] == pytest.approx(0.2)
    assert prof["safety"]["scaled"] == pytest.approx(0.7)  # the highest SNR
    assert prof["sustainability"]["scaled"] == pytest.approx(0.6)
    assert prof["calibration"]["scaled"] == pytest.approx(0.8)
    del report["privacy"]
    assert profile(report)["privacy"]["scaled"] is None


def test_attribute_fairness_is_the_ccc_gap_between_groups():
    import numpy as np

    from s3prl_emo.metrics import concordance_cc
    from s3prl_emo.trust.fairness import attribute_fairness

    rng = np.random.default_rng(0)
    truth = rng.uniform(1, 5, size=(80, 2))
    groups = np.array(["F", "M"] * 40)
    pred = truth + np.where(groups[:, None] == "M", rng.normal(0, 1.5, size=truth.shape), 0.1)
    found = attribute_fairness(pred, truth, groups, ["EmoAct", "EmoVal"])
    female = concordance_cc(pred[groups == "F", 0], truth[groups == "F", 0])
    male = concordance_cc(pred[groups == "M", 0], truth[groups == "M", 0])
    assert found["per_attribute"]["EmoAct"]["ccc_gap"] == pytest.approx(female - male)
    assert found["macro"]["ccc_gap"] > 0.3
    with pytest.raises(InvalidInputError, match="at least two groups"):
        attribute_fairness(pred, truth, ["F"] * 80, ["EmoAct", "EmoVal"])
