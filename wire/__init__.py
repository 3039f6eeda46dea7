"""The wire schema ``placement.v1``: the code generated from ``proto/`` and the conversion
between its messages and the library's domain types. The CLI's files and the gRPC service
speak it alike; the library never imports it."""
