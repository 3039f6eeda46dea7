"""Upper bounds on placed work: the node-group linear relaxation (also the LP that the
LP-guided greedy rounds), its integer strengthening per power domain, and the site-level
relaxation used by partitioned solves."""
