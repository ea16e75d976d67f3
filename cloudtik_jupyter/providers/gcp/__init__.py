"""GCP provider: workspaces (VPC network, subnetworks, firewall, Cloud NAT, service accounts, bucket) and
cluster nodes (Compute Engine instances), over google-cloud-compute and Google's discovery clients.

Nothing here imports a Google SDK at module level except the modules that talk to GCP, which are
themselves imported only when the "gcp" provider is used (see ``providers/__init__.py``).
"""
