"""Methods that build a plan from nothing: the fast greedy, the LP-guided greedy, and the
placement loop with its scoring policies (first-fit decreasing, best-fit, fragmentation
gradient descent). Each places through the rule kernel of ``placement.core.state``."""
