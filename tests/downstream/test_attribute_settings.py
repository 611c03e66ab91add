"""The attribute task's keys of ``downstream_expert``, and its checkpoint state, are checked before any work."""

import pytest

from s3prl_emo.downstream.settings import attribute_state, check_expert_config, checked_attribute_state
from s3prl_emo.errors import InvalidInputError


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"task": "regression"}, r"downstream_expert\.task: expected one of \['categorical', 'attributes', 'both'\]"),
        ({"attribute_loss": "l1"}, r"downstream_expert\.attribute_loss: expected one of \['ccc', 'mse'\]"),
        ({"attributes": "EmoAct"}, r"downstream_expert\.attributes: expected null"),
        ({"attributes": ["EmoAct", "EmoAct"]}, r"downstream_expert\.attributes"),
        ({"attribute_weight": 0}, r"downstream_expert\.attribute_weight: expected a number > 0"),
    ],
)
def test_bad_attribute_options_are_refused_naming_the_key(block, message):
    with pytest.raises(InvalidInputError, match=message):
        check_expert_config(block)


def test_good_attribute_options_pass():
    check_expert_config({"task": "both", "attributes": ["EmoAct", "EmoVal"], "attribute_weight": 0.5})


def test_checkpoint_attribute_state_round_trips_and_is_checked():
    state = attribute_state("attributes", ("EmoAct",), [3.0], [0.5])
    assert checked_attribute_state(state, "ckpt") == ("attributes", ("EmoAct",), [3.0], [0.5])
    assert checked_attribute_state({}, "ckpt") == ("categorical", (), [], [])  # written before the task existed
    with pytest.raises(InvalidInputError, match=r"ckpt\.attribute_std"):
        checked_attribute_state({**state, "attribute_std": [0.0]}, "ckpt")
    with pytest.raises(InvalidInputError, match=r"ckpt\.attribute_mean"):
        checked_attribute_state({**state, "attribute_mean": [float("nan")]}, "ckpt")
