"""Many runs of the benchmark as one command: plan, run (locally or on Slurm), read back.

``plan`` turns upstreams x conditions x folds x grid points into run folders, ``worker``
trains and evaluates one of them through S3PRL's ``run_downstream`` and writes its
``result.json`` last, ``local`` and ``slurm`` launch workers, ``state`` reads a RESULTS
folder back without any scheduler.
"""
