"""fleetplace: the command line (``cli``), its plain-text reports (``report``) and the bundled
datasets (``datasets``). Files are read and written through ``wire.files``; trace importers
live in ``importers``, benchmarks and baselines in ``benchmarks``.
"""
