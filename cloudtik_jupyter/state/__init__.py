"""The head's state store: redis-server processes (`redis_server`) and typed tables over them (`store`).

Import the submodules you need; this package imports nothing so ``import cloudtik_jupyter`` stays fast.
"""
