"""Bounds on everything a config may say: a config is input, and input is bounded.

Each limit is far above what a real cluster needs and far below what exhausts a machine; the README's
config reference lists them. A config past a bound is refused (exit 2) before anything is created.
"""

from __future__ import annotations

# The text of one config file or cell, and what its YAML may expand to (aliases count once per use).
MAX_CONFIG_BYTES = 1024 * 1024
MAX_CONFIG_VALUES = 20_000
MAX_NESTING = 32  # mappings and lists inside each other
MAX_FROM_CHAIN = 8  # `from:` templates on top of each other

# Strings and lists.
MAX_STRING = 64 * 1024  # any single string (a setup command is one argument of `sh -c`: < 128 KiB)
MAX_PATH = 4096
MAX_COMMANDS = 256  # entries of each *_commands list
MAX_FILE_MOUNTS = 256
MAX_NODE_TYPES = 32
MAX_MAPPING_KEYS = 256  # node_config, resources, a runtime's conf
MAX_RUN_OPTIONS = 64  # each docker *_run_options list and docker.mounts
MAX_RUN_OPTION = 1024

# Counts and intervals (seconds unless named otherwise).
MAX_WORKERS = 10_000  # per node type, and in total
MIN_INTERVAL, MAX_INTERVAL = 0.1, 3600.0  # controller_interval
MIN_HEARTBEAT, MAX_HEARTBEAT = 0.1, 60.0  # heartbeat_interval
MIN_HEARTBEAT_TIMEOUT, MAX_HEARTBEAT_TIMEOUT = 1.0, 3600.0
MAX_IDLE_MINUTES = 7 * 24 * 60.0
MAX_RECOVERY_TIMEOUT = 600.0  # head.recovery_timeout
MAX_CPU_PERCENT = 100.0 * 1024  # head.idle_cpu_percent: percent of one core, summed over a node's processes
MAX_TRIES = 100  # max_update_tries, max_failed_launches
MAX_RESOURCE = 1e15  # a node type's resource amount (CPU count, memory bytes, ...)
