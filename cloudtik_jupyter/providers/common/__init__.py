"""Pieces every cloud's workspace and node provider share: named steps (progress, resumption, fault
injection), polling with a deadline, subnet planning, node_config parsing and node bootstrap data.

Nothing here imports a cloud SDK.
"""
