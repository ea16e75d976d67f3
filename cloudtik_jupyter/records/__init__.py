"""The ground floor: records every part of the package shares (nodes, service links, cluster status, the
on-node layout of files, the node environment). Imports nothing of the package, so anything may import it."""
