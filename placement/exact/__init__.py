"""The exact per-node model: its formulation (``model``, one module per constraint family),
the solver backends behind one narrow interface (``backends``), and the decoder between
the model's counts and replicas on GPUs (``decode``)."""
