"""``--trainer batched``: many runs of one upstream trained together, one vectorised step for all.

A run is what ``s3prl-emo train ARGV`` trains; this package trains a list of them in one
process, each with the arithmetic and the files that command would give it:

* ``setup``: each run's S3PRL arguments and config (read by S3PRL's own ``run_downstream``),
  whether the batched path can honour them (otherwise the reason), and what runs share:
  one ``OnePassRunner`` per upstream (its store, its Featurizer), one expert per fold and
  expert config (its loss; its pooled features as rows of one table, in which each stored
  file is held once whatever its folds), the head of each run
  initialised from the random state the Runner would have;
* ``engine``: the runs' parameters, gradients and Adam moments stacked as ``(R, ...)``
  tensors, a forward over runs (batched matrix products for a head of linear layers and
  elementwise activations, ``torch.func.vmap`` for any other), clipping by each run's own
  gradient norm as a vector of factors, Adam/AdamW by torch's fused kernel on the rows that
  share lr, weight decay and step count (one call for each such run of rows);
* ``files``: the runner's checkpoint layout (``states-N.ckpt``, ``dev-best.ckpt``; a run's
  rows of the stack as its own parameters and torch.optim state), written atomically
  without fsync, with what an exact resume needs; tensorboard scalars written by the
  training loop itself (tensorboardX's ``SummaryWriter`` runs two threads per run);
* ``trainer``: the loop (sampler order per run, log/eval/save cadence, dev-best by the
  expert's rule, training records read back only at log and save steps, a run that is done
  or fails leaves the stack, which keeps the others' rows).
"""

from __future__ import annotations

from .setup import fallback_reason
from .trainer import RunOutcome, train_batched

__all__ = ["RunOutcome", "fallback_reason", "train_batched"]
