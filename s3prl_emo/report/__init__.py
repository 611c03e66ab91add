"""A sweep's RESULTS as the paper shows them: the Table 3 leaderboard, radar, layer weights,
per-class F1, co-occurrence matrices, and an ``index.html`` that holds it all (offline)."""
