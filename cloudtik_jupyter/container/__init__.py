"""Container mode (``docker.enabled``): a node's commands and services run inside one Docker container.

`runner` picks the node's command runner (host or container); `spec` derives the container from the config;
`scripts` is the shell run on the node; `lifecycle` starts/reuses it; `handover` stops a host-mode agent;
`shared_daemon` removes virtual nodes' containers with them; `skeleton` builds a registry-free image;
`testing` runs a private Docker daemon for tests and benchmarks.
"""
