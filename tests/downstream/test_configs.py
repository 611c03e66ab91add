"""The shipped configs carry EMO-SUPERB's released recipe (its config_*.yaml files) and build the expert's head."""

import pytest
import torch
import yaml

from s3prl_emo.downstream.model import EmotionHead

RECIPE = {  # file: (corpus folder, Primary/Secondary, batch, total_steps, log/eval/save step)
    "IEMOCAP": ("IEMOCAP", "Secondary", 32, 7240, 181),
    "CREMA-D": ("CREMA-D", "Primary", 32, 15510, 141),
    "IMPROV_P": ("IMPROV", "Primary", 32, 7785, 173),
    "IMPROV_S": ("IMPROV", "Secondary", 32, 10380, 173),
    "PODCAST_P": ("PODCAST", "Primary", 32, 65650, 2626),
    "PODCAST_S": ("PODCAST", "Secondary", 16, 105040, 2626),
    "NNIME": ("NNIME", "Secondary", 32, 4450, 89),
    "BPODCAST_P": ("BIIC_PODCAST", "Primary", 32, 38150, 1526),
    "BPODCAST_S": ("BIIC_PODCAST", "Secondary", 32, 68670, 1526),
}


@pytest.mark.parametrize("name", sorted(RECIPE))
def test_condition_config_matches_the_released_recipe(repo_root, name):
    config = yaml.safe_load((repo_root / "downstream_configs" / f"{name}.yaml").read_text())
    corpus, p_or_s, batch, steps, every = RECIPE[name]
    runner, datarc, modelrc = (
        config["runner"],
        config["downstream_expert"]["datarc"],
        config["downstream_expert"]["modelrc"],
    )
    assert (datarc["corpus"], datarc["p_or_s"]) == (corpus, p_or_s)
    assert datarc["train_batch_size"] == datarc["eval_batch_size"] == batch
    assert runner["total_steps"] == steps
    assert runner["log_step"] == runner["eval_step"] == runner["save_step"] == every
    assert (runner["gradient_clipping"], runner["gradient_accumulate_steps"], runner["max_keep"]) == (1, 1, 1)
    assert runner["eval_dataloaders"] == ["dev", "test"]
    assert config["optimizer"] == {"name": "TorchOptim", "torch_optim_name": "AdamW", "lr": 1.0e-4}
    assert "scheduler" not in config
    assert datarc["max_duration_s"] == 10
    assert (modelrc["projector_dim"], modelrc["select"], modelrc["UtteranceLevel"]["pooling"]) == (
        256,
        "UtteranceLevel",
        "MeanPooling",
    )


@pytest.mark.parametrize("name", [*sorted(RECIPE), "SYNTH"])
def test_every_config_builds_a_head_that_maps_features_to_logits(repo_root, name):
    config = yaml.safe_load((repo_root / "downstream_configs" / f"{name}.yaml").read_text())
    head = EmotionHead(24, 5, config["downstream_expert"]["modelrc"])
    logits = head(torch.randn(3, 40, 24), torch.tensor([40, 17, 3]))
    assert logits.shape == (3, 5)


def test_deep_model_is_selectable(repo_root):
    config = yaml.safe_load((repo_root / "downstream_configs" / "IEMOCAP.yaml").read_text())
    modelrc = {**config["downstream_expert"]["modelrc"], "select": "DeepModel"}
    assert EmotionHead(24, 9, modelrc)(torch.randn(2, 30, 24), torch.tensor([30, 12])).shape == (2, 9)


@pytest.mark.parametrize("name", sorted(RECIPE))
def test_sota_config_is_the_condition_with_the_pooled_mlp_head(repo_root, name):
    sota = yaml.safe_load((repo_root / "downstream_configs" / f"SOTA_{name}.yaml").read_text())
    plain = yaml.safe_load((repo_root / "downstream_configs" / f"{name}.yaml").read_text())
    assert sota["runner"] == plain["runner"]
    assert sota["downstream_expert"]["datarc"] == plain["downstream_expert"]["datarc"]
    head = EmotionHead(1024, 4, sota["downstream_expert"]["modelrc"])
    hidden = [m for m in head.model.mlp if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in hidden] == [1024, 1024, 4]
    assert [m.p for m in head.model.mlp if isinstance(m, torch.nn.Dropout)] == [0.5, 0.5]
