"""The package's face: every public name resolves, and importing it pulls in no torch."""

import subprocess
import sys

import pytest

import s3prl_emo


def test_import_and_the_torch_free_names_leave_torch_unloaded():
    code = (
        "import sys, s3prl_emo; "
        "from s3prl_emo import soft_labels, score, multilabel_macro_f1, CORPORA, InvalidInputError, fold_table; "
        "print(','.join(m for m in ('torch', 'torchaudio', 's3prl') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("name", s3prl_emo.__all__)
def test_every_public_name_resolves_and_has_a_docstring(name):
    value = getattr(s3prl_emo, name)
    if callable(value):
        assert (value.__doc__ or "").strip(), f"{name} has no docstring"


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        s3prl_emo.no_such_name  # noqa: B018


def test_all_lists_exactly_the_lazy_names():
    assert set(s3prl_emo.__all__) == {"__version__", *s3prl_emo._EXPORTS}
    assert len(s3prl_emo.__all__) == len(set(s3prl_emo.__all__))
