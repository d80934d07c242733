"""``alignrec report``: one HTML page of plots for a run directory."""
