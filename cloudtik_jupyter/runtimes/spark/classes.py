"""The Spark daemons' names: main classes, service names and JVM flags (standard library only, so the
setup step that checks a node imports nothing heavy)."""

from __future__ import annotations

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
HISTORY_CLASS = "org.apache.spark.deploy.history.HistoryServer"
ROLE_CLASSES = {"master": MASTER_CLASS, "worker": WORKER_CLASS, "history": HISTORY_CLASS}
SERVICE_NAMES = {"master": "spark-master", "worker": "spark-worker", "history": "spark-history"}

# The daemons only coordinate (executors are separate JVMs with their own flags): the C1 JIT alone and the
# serial collector halve their start time and footprint.
DAEMON_JVM_FLAGS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
