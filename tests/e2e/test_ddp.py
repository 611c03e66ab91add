"""The train loader shards the train split across DDP processes (2 gloo processes on CPU)."""

import os
import socket

import torch.distributed as dist
import torch.multiprocessing as mp

MODELRC = {"projector_dim": 8, "select": "UtteranceLevel", "UtteranceLevel": {"pooling": "MeanPooling"}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, root, expdir, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from s3prl_emo.downstream.expert import DownstreamExpert

    config = {
        "datarc": {"root": str(root), "corpus": "SYNTH", "p_or_s": "Primary", "train_batch_size": 4},
        "modelrc": MODELRC,
    }
    expert = DownstreamExpert(upstream_dim=4, downstream_expert=config, expdir=f"{expdir}/{rank}")
    shards = {}
    for epoch in (0, 1):
        shards[epoch] = [name for _, _, names in expert.get_dataloader("train", epoch=epoch) for name in names]
    gathered = [None] * world
    dist.all_gather_object(gathered, shards)
    if rank == 0:
        out.put((gathered, sorted(expert.datasets["train"].names)))
    dist.destroy_process_group()


def test_train_shards_are_disjoint_cover_the_split_and_reshuffle_per_epoch(synth_root, tmp_path):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    mp.start_processes(
        _worker, args=(2, _free_port(), synth_root, tmp_path, out), nprocs=2, join=True, start_method="spawn"
    )
    gathered, train = out.get(timeout=60)
    for epoch in (0, 1):
        a, b = gathered[0][epoch], gathered[1][epoch]
        assert len(a) == len(b) == len(train) // 2
        assert not set(a) & set(b)
        assert sorted(a + b) == train
    assert gathered[0][0] != gathered[0][1]  # set_epoch: a new order each epoch
