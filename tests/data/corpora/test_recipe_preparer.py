"""The recipes' ``prepare_<corpus>`` (``builder.recipe_preparer``): one signature, checked first."""

import inspect

import pytest

from s3prl_emo.data.corpora import CORPORA
from s3prl_emo.data.labels import DEFAULT_SMOOTHING

RECIPES = [key for key in CORPORA if key != "generic"]
SHARED = {"audio": "symlink", "relabel": None, "smoothing": DEFAULT_SMOOTHING, "overwrite": False}


@pytest.mark.parametrize("key", RECIPES)
def test_every_recipe_takes_the_shared_options_with_the_shared_defaults(key):
    prepare = CORPORA[key].prepare
    assert prepare.__name__ == f"prepare_{CORPORA[key].module.rpartition('.')[2]}"
    params = inspect.signature(prepare).parameters
    assert list(params)[:2] == ["corpus_dir", "output_dir"]
    assert params["output_dir"].default is None
    assert {name: params[name].default for name in SHARED} == SHARED
    assert all(params[name].kind is inspect.Parameter.KEYWORD_ONLY for name in SHARED)
    assert (prepare.__doc__ or "").strip()


def test_iemocap_keeps_its_own_option():
    param = inspect.signature(CORPORA["iemocap"].prepare).parameters["self_evaluations"]
    assert (param.kind, param.default) == (inspect.Parameter.KEYWORD_ONLY, True)


@pytest.mark.parametrize("key", RECIPES)
def test_a_wrong_argument_fails_before_the_release_is_read(key, tmp_path):
    prepare = CORPORA[key].prepare
    missing = tmp_path / "no-release"  # reading it would raise a layout error instead
    with pytest.raises(TypeError, match=rf"{prepare.__name__}\(\) got an unexpected keyword argument 'smoothin'"):
        prepare(missing, smoothin=0.1)
    with pytest.raises(TypeError, match="too many positional arguments"):
        prepare(missing, tmp_path / "out", "copy")
