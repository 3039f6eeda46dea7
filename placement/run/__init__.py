"""Running a solve: the pipeline (``solve``), its one time budget and the deterministic
mode's effort, the method registry, the portfolio of forked children, and the partitioned
solve over groups of sites."""
