"""HTTP API: plate search, hotlist management and the live alert stream, in front of the gRPC services."""
