"""Bad configs and the substring their error must contain: (id, yaml_text, expected).

Shared by the config unit tests and the CLI exit-code test. Local paths are relative, so a test writes
the YAML into an empty tmp dir (as `cluster.yaml`) and the files it names do not exist there.
"""

from __future__ import annotations

BAD_CONFIGS: list[tuple[str, str, str]] = [
    (
        "bad-yaml",
        "cluster_name: bad\nfrom: virtual-small\n  setup_commands: [ls\n",
        "at line 3, column 17",
    ),
    (
        "duplicate-key",
        "cluster_name: dup\nfrom: virtual-small\ncluster_name: dup2\n",
        "duplicate key 'cluster_name'",
    ),
    (
        "unknown-key",
        "cluster_name: typo\nfrom: virtual-small\navailable_node_types:\n  worker: {max_worker: 3}\n",
        "available_node_types.worker.max_worker: unknown key 'max_worker'; did you mean 'max_workers'?",
    ),
    (
        "unknown-top-level-key",
        "cluster_name: typo\nfrom: virtual-small\nsetup_comands: [ls]\n",
        "setup_comands: unknown key 'setup_comands'; did you mean 'setup_commands'?",
    ),
    (
        "unknown-provider-key",
        "cluster_name: typo\nfrom: virtual-small\nprovider: {type: virtual, address_blok: 127.9.0.0/16}\n",
        "provider.address_blok: unknown key 'address_blok'; did you mean 'address_block'?",
    ),
    (
        "wrong-type",
        "cluster_name: types\nfrom: virtual-small\navailable_node_types:\n  worker: {min_workers: two}\n",
        "available_node_types.worker.min_workers: expected an integer, got a string ('two')",
    ),
    (
        "wrong-type-list",
        "cluster_name: types\nfrom: virtual-small\nsetup_commands: echo hi\n",
        "setup_commands: expected a list, got a string ('echo hi')",
    ),
    (
        "min-greater-than-max",
        "cluster_name: counts\nfrom: virtual-small\navailable_node_types:\n  worker: {min_workers: 5}\n",
        "available_node_types.worker.max_workers: must be >= min_workers (5)",
    ),
    (
        "negative-count",
        "cluster_name: counts\nfrom: virtual-small\navailable_node_types:\n  worker: {min_workers: -1}\n",
        "available_node_types.worker.min_workers: must be >= 0, got -1",
    ),
    (
        "unknown-provider",
        "cluster_name: cloud\nfrom: virtual-small\nprovider: {type: nocloud}\n",
        "provider.type: unknown provider 'nocloud' (known: ",
    ),
    (
        "provider-without-type",
        "cluster_name: cloud\nfrom: virtual-small\nprovider: {type: null}\n",
        "provider.type: required key is missing (known: ",
    ),
    (
        "unknown-head-type",
        "cluster_name: head\nfrom: virtual-small\nhead_node_type: hed\n",
        "head_node_type: unknown node type 'hed' (known: head, worker)",
    ),
    (
        "missing-file-mount-source",
        'cluster_name: mounts\nfrom: virtual-small\nfile_mounts: {"/remote/data": ./no-such-dir}\n',
        'file_mounts."/remote/data": local source not found: ',
    ),
    (
        "unknown-template",
        "cluster_name: tmpl\nfrom: virtual-smal\n",
        "from: unknown template 'virtual-smal'; did you mean 'virtual-small'?",
    ),
    (
        "missing-template-file",
        "cluster_name: tmpl\nfrom: ./no-such-base.yaml\n",
        "from: template file not found: ",
    ),
    (
        "bad-cluster-name",
        "cluster_name: My_Cluster\nfrom: virtual-small\n",
        "cluster_name: must start with a lowercase letter",
    ),
    (
        "missing-cluster-name",
        "from: virtual-small\n",
        "cluster_name: required key is missing",
    ),
    (
        "runtime-typo",
        "cluster_name: rt\nfrom: virtual-small\nruntime: {typs: [spark]}\n",
        "runtime.typs: unknown key 'typs'; did you mean 'types'?",
    ),
    (
        "heartbeat-timeout-too-short",
        "cluster_name: hb\nfrom: virtual-small\nhead: {heartbeat_interval: 2, heartbeat_timeout: 1}\n",
        "head.heartbeat_timeout: must be greater than heartbeat_interval (2)",
    ),
    (
        "recovery-timeout-zero",
        "cluster_name: rt\nfrom: virtual-small\nhead: {recovery_timeout: 0}\n",
        "head.recovery_timeout: must be > 0, got 0",
    ),
    (
        "recovery-timeout-huge",
        "cluster_name: rt\nfrom: virtual-small\nhead: {recovery_timeout: 100000}\n",
        "head.recovery_timeout: must be <= 600, got 100000",
    ),
    (
        "idle-cpu-negative",
        "cluster_name: rt\nfrom: virtual-small\nhead: {idle_cpu_percent: -1}\n",
        "head.idle_cpu_percent: must be >= 0, got -1",
    ),
    (
        "unknown-runtime",
        "cluster_name: rt\nfrom: virtual-small\nruntime: {types: [flink]}\n",
        "runtime.types: unknown runtime 'flink' (known: dask, mlflow, ray, spark)",
    ),
    (
        "bad-runtime-section",
        "cluster_name: rt\nfrom: virtual-spark\nruntime: {spark: {master_port: nope}}\n",
        "runtime.spark.master_port:",
    ),
    (
        "dask-unknown-key",
        "cluster_name: rt\nfrom: virtual-small\nruntime: {types: [dask], dask: {worker_thread: 2}}\n",
        "runtime.dask.worker_thread: unknown key 'worker_thread'; did you mean 'worker_threads'?",
    ),
    (
        "dask-port-out-of-range",
        "cluster_name: rt\nfrom: virtual-small\nruntime: {types: [dask], dask: {scheduler_port: 70000}}\n",
        "runtime.dask.scheduler_port: Input should be less than or equal to 65535",
    ),
    (
        "dask-dashboard-on-scheduler-port",
        "cluster_name: rt\nfrom: virtual-small\nruntime: {types: [dask], dask: {dashboard_port: 8786}}\n",
        "runtime.dask.dashboard_port: port 8786 is already used by scheduler_port on the head",
    ),
    (
        "runtimes-clash-on-a-port",
        "cluster_name: rt\nfrom: virtual-small\nruntime: {types: [spark, mlflow], mlflow: {port: 8080}}\n",
        "runtime.mlflow.port: port 8080 is already used by runtime.spark.master_ui_port on the head",
    ),
    (
        "runtime-on-the-state-store-port",
        "cluster_name: rt\nfrom: virtual-small\nruntime: {types: [ray], ray: {gcs_port: 6789}}\n",
        "runtime.ray.gcs_port: port 6789 is already used by the state store (redis) on the head",
    ),
    (
        "runtime-listed-twice",
        "cluster_name: rt\nfrom: virtual-small\nruntime: {types: [dask, dask]}\n",
        "runtime.types: a runtime is listed twice",
    ),
    (
        "mlflow-consumer-runs-no-server",
        "cluster_name: rt\nfrom: virtual-small\n"
        "runtime: {types: [mlflow], mlflow: {from_cluster: tracking, backend_store: 'sqlite:///x.db'}}\n",
        "runtime.mlflow.backend_store: a cluster that uses from_cluster runs no tracking server",
    ),
    (
        "mlflow-from-cluster-not-a-name",
        "cluster_name: rt\nfrom: virtual-small\nruntime: {types: [mlflow], mlflow: {from_cluster: ../etc}}\n",
        "runtime.mlflow.from_cluster: String should match pattern",
    ),
    (
        "mlflow-artifacts-not-a-uri",
        "cluster_name: rt\nfrom: virtual-small\nruntime: {types: [mlflow], mlflow: {artifacts: '; rm -rf /'}}\n",
        "runtime.mlflow.artifacts: String should match pattern",
    ),
    (
        "ray-object-store-too-small",
        "cluster_name: rt\nfrom: virtual-small\nruntime: {types: [ray], ray: {object_store_memory: 64m}}\n",
        "runtime.ray.object_store_memory: Ray needs at least 80m",
    ),
    ("not-a-mapping", "- cluster_name: list\n", "config must be a mapping of keys to values, got a list"),
    ("empty", "# nothing but a comment\n", "config is empty"),
]
