"""Git servers the engines fetch from: in-cluster (kind) here; external URLs elsewhere."""
