"""Methods that improve a finished plan: fill, relocate, swap tiers, consolidate and
repack power domains, each through the rule kernel of ``placement.core.state``."""
