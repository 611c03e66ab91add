"""One number per axis, scaled to [0, 1] with outward (1) better, with fixed bounds so
that profiles of different models share one scale."""

from __future__ import annotations

import math

# axis -> (where the raw figure is in trust.json, what it is, how it is scaled)
AXES = {
    "performance": ("performance.macro_f1", "test macro-F1", "value (higher is better)"),
    "fairness": (
        "fairness.macro.equalized_odds_difference",
        "macro equalized-odds difference between genders",
        "1 - value",
    ),
    "privacy": ("privacy.uar", "gender-probe UAR", "clip(2 * (1 - value), 0, 1): 1 at chance (0.5), 0 at 1.0"),
    "safety": ("safety.fgsm.<first SNR>.success_rate", "FGSM success rate at the highest SNR", "1 - value"),
    "sustainability": (
        "sustainability.macs_6s",
        "GMACs of a 6 s input",
        "1 - clip((log10(GMACs) + 2) / 5, 0, 1): 1 at 0.01 GMACs, 0 at 1000 GMACs",
    ),
    "calibration": ("calibration.ece_macro", "macro ECE against soft labels", "1 - clip(value / 0.25, 0, 1)"),
}


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))


def _raw(report: dict, axis: str) -> float | None:
    try:
        if axis == "performance":
            return (report.get("performance") or report["calibration"])["macro_f1"]
        if axis == "fairness":
            return report["fairness"]["macro"]["equalized_odds_difference"]
        if axis == "privacy":
            return report["privacy"]["uar"]
        if axis == "safety":
            fgsm = report["safety"]["fgsm"]
            return fgsm[max(fgsm, key=float)]["success_rate"]
        if axis == "sustainability":
            return report["sustainability"]["macs_6s"] / 1e9
        if axis == "calibration":
            return report["calibration"]["ece_macro"]
    except (KeyError, TypeError, ValueError):
        return None
    return None


def _scale(axis: str, value: float) -> float:
    if axis == "performance":
        return _clip(value)
    if axis == "privacy":
        return _clip(2 * (1 - value))
    if axis == "sustainability":
        return 1 - _clip((math.log10(max(value, 1e-12)) + 2) / 5)
    if axis == "calibration":
        return 1 - _clip(value / 0.25)
    return _clip(1 - value)


def profile(report: dict) -> dict:
    """``{axis: {raw, scaled, source, meaning, scaling}}``; axes without a figure have scaled None."""
    out = {}
    for axis, (source, meaning, scaling) in AXES.items():
        raw = _raw(report, axis)
        out[axis] = {
            "raw": raw,
            "scaled": None if raw is None else _scale(axis, raw),
            "source": source,
            "meaning": meaning,
            "scaling": scaling,
        }
    return out
