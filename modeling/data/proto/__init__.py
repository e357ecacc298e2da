"""Generated protobuf modules; the .proto files beside them say how to regenerate."""
