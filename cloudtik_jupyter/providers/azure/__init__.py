"""Azure provider: workspaces (resource group, virtual network, NSG, NAT gateway, managed identities with
role assignments, storage account) and cluster nodes (VMs with their NICs, disks and public IPs), over
the azure-mgmt-* SDKs.

Nothing here imports an Azure SDK at module level except the modules that talk to Azure, which are
themselves imported only when the "azure" provider is used (see ``providers/__init__.py``).
"""
