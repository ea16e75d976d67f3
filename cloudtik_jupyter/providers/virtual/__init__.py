"""The embedded `virtual` provider: nodes are local process trees on their own 127.x address."""
