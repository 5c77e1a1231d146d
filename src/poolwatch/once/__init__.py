"""`poolwatch --once`: one pass over the selected checks, its results, formats and notify."""
