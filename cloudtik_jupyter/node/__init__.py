"""The node agent: one long-lived process per node that runs its services and heartbeats (`agent`)."""
