"""One number per axis, scaled to [0, 1] with outward (1) better.

The bounds are fixed so that profiles of different models share one scale.
"""

from __future__ import annotations

import math

from ..errors import InvalidInputError
from ..runtime.guards import finite_number

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


HIGHEST_SNR = "<highest SNR>"
# axis -> the places of its raw figure in trust.json, in order: (keys, low, high, meaning); the
# first present one is scored. Meaning None: the axis's own (``AXES``). An attributes-only
# checkpoint has no macro-F1 and no equalized odds: its figures are the mean CCC and the CCC gap.
FIGURES: dict[str, tuple[tuple[tuple[str, ...], float, float, str | None], ...]] = {
    "performance": (
        (("performance", "macro_f1"), 0.0, 1.0, None),
        (("calibration", "macro_f1"), 0.0, 1.0, None),
        (("performance", "ccc_mean"), -1.0, 1.0, "test mean CCC over the attributes (attributes-only model)"),
    ),
    "fairness": (
        (("fairness", "macro", "equalized_odds_difference"), 0.0, 1.0, None),
        (
            ("fairness", "attributes", "macro", "ccc_gap"),
            0.0,
            2.0,
            "mean CCC gap between genders over the attributes (attributes-only model)",
        ),
    ),
    "privacy": ((("privacy", "uar"), 0.0, 1.0, None),),
    "safety": ((("safety", "fgsm", HIGHEST_SNR, "success_rate"), 0.0, 1.0, None),),
    "sustainability": ((("sustainability", "macs_6s"), 0.0, math.inf, None),),
    "calibration": ((("calibration", "ece_macro"), 0.0, 1.0, None),),
}


def _lookup(report: dict, keys: tuple[str, ...], where: str) -> tuple[str, object]:
    """The dotted key and the value at ``keys`` (None when a key is absent or null)."""
    node: object = report
    walked: list[str] = []
    for key in keys:
        if not isinstance(node, dict):
            raise InvalidInputError(f"{where}: {'.'.join(walked)} is {type(node).__name__}, not an object")
        if key == HIGHEST_SNR and node:
            snrs = {}
            for name in node:
                try:
                    snrs[name] = finite_number(float(name), where=name)
                except ValueError:  # not a number, or NaN / infinite
                    raise InvalidInputError(f"{where}: {'.'.join(walked)} key {name!r} is not an SNR in dB") from None
            key = max(snrs, key=snrs.get)
        walked.append(key)
        if node.get(key) is None:
            return ".".join(walked), None
        node = node[key]
    return ".".join(walked), node


def figure(report: dict, axis: str, *, where: str = "trust.json") -> float | None:
    """The raw figure of ``axis`` in a trust report: None if absent, else a finite number in range.

    Raises:
        InvalidInputError: the figure (or an object on its way) is there but not what it should
            be: a string, NaN, out of its range; naming ``where`` and the key.

    Examples:
        >>> figure({"privacy": {"uar": 0.75}}, "privacy")
        0.75
        >>> figure({"privacy": {"uar": "0.75"}}, "privacy")
        Traceback (most recent call last):
        ...
        s3prl_emo.errors.InvalidInputError: trust.json: privacy.uar: '0.75' is not a number
    """
    found = _figure(report, axis, where)
    return None if found is None else found[0]


def _figure(report: dict, axis: str, where: str) -> tuple[float, str, str | None] | None:
    """``figure`` with the dotted key it was read from and that place's meaning."""
    for keys, low, high, meaning in FIGURES[axis]:
        key, value = _lookup(report, keys, where)
        if value is not None:
            number = finite_number(value, where=f"{where}: {key}", low=low, high=high)
            return (number / 1e9 if axis == "sustainability" else number), key, meaning
    return None


def check_report(report: dict, *, where: str) -> None:
    """Refuse a trust report whose profile figures are not all absent or valid (``figure``)."""
    for axis in AXES:
        figure(report, axis, where=where)


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
    """``{axis: {raw, scaled, source, meaning, scaling}}``; axes without a valid figure have scaled None.

    A figure that is not a finite number in its range (a NaN of a failed computation) is
    not scored: it is n/a, never clipped into a score. ``check_report`` refuses such a report.
    An axis that does not apply (an attributes-only checkpoint's safety and calibration: no
    attribute counterpart) has no figure and is n/a too. Where the figure comes from another
    place than the axis's own (an attributes-only checkpoint's mean CCC and CCC gap),
    ``source`` and ``meaning`` say so.

    Examples:
        >>> scores = profile(json.loads(Path("trust/trust.json").read_text()))  # doctest: +SKIP
        >>> scores["fairness"]["scaled"]  # doctest: +SKIP
        0.91
    """
    out = {}
    for axis, (source, meaning, scaling) in AXES.items():
        try:
            found = _figure(report, axis, "trust.json")
        except InvalidInputError:
            found = None
        raw = None if found is None else found[0]
        if found is not None and found[2] is not None:
            source, meaning = found[1], found[2]
        out[axis] = {
            "raw": raw,
            "scaled": None if raw is None else _scale(axis, raw),
            "source": source,
            "meaning": meaning,
            "scaling": scaling,
        }
    return out
