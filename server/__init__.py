"""The gRPC service ``placement.v1.PlacementService`` around the library: ``app`` builds and runs
it, ``service`` is the servicer; see docs/ARCHITECTURE.md for every module."""
