"""Scale-out: the same jobs in this process or on Ray (``--backend local|ray``).

``backend`` (where shards run), ``embed`` (catalogue encoding with Ray Data into the embedding cache),
``batch`` (top-k of every user as Parquet), ``evaluate`` (test users sharded, metrics merged exactly).
Nothing here imports Ray at module level: ``--backend ray`` without it is a clear error, exit 2.
"""
