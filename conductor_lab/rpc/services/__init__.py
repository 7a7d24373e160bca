"""gRPC servicers: thin adapters from conductor-oss's RPCs to the engine's operations."""
