"""AWS provider: workspaces (VPC, NAT, firewall, IAM, bucket) and cluster nodes, over boto3.

Nothing here imports boto3 at module level except the modules that talk to AWS, which are themselves
imported only when the "aws" provider is used (see ``providers/__init__.py``).
"""
