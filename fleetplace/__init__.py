"""fleetplace: the command line, text reports, dataset importers and input files.

``wire.files`` reads requests and plans from JSON/YAML files in the ``placement.v1``
JSON mapping and writes messages back atomically.
"""
