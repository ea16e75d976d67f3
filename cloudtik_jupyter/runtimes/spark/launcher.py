"""The Hive metastore's launcher class, compiled once per machine from its Java source with Janino.

Debian's JRE has no javac; pyspark's jars have Janino (Spark compiles generated code with it), which turns
``java/MetastoreLauncher.java`` into a class file at setup. The result is cached beside the class-data-sharing
archives, under a name that hashes the source and what it was compiled against (Spark jars, JDK), so an
upgrade or an edit compiles again. Standard library only: the setup step checks this on every `up`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ...errors import CloudtikError
from .archives import cache_dir
from .install import SparkInstall

SOURCE = Path(__file__).parent / "java" / "MetastoreLauncher.java"
MAIN_CLASS = "cloudtik.MetastoreLauncher"
_CLASS_FILE = Path("cloudtik") / "MetastoreLauncher.class"
COMPILER_MAIN = "org.codehaus.commons.compiler.samples.CompilerDemo"  # Janino's javac-like command line
COMPILE_TIMEOUT = 180.0
LOCK_TIMEOUT = 300.0


def _jars(install: SparkInstall) -> list[Path]:
    return sorted((install.spark_home / "jars").glob("*.jar"))


def launcher_dir(install: SparkInstall, directory: Path | None = None) -> Path:
    """Where the compiled launcher lives (a class-path directory) for this source, Spark and JDK."""
    identity = [
        hashlib.sha256(SOURCE.read_bytes()).hexdigest(),
        str(install.java_home.resolve()),
        install.java_version,
        str(install.spark_home.resolve()),
        install.spark_version,
        str((install.spark_home / "jars").stat().st_mtime_ns),
    ]
    key = hashlib.sha256("\0".join(identity).encode()).hexdigest()[:16]
    return (directory or cache_dir()) / f"metastore-{key}"


def launcher_ready(install: SparkInstall, directory: Path | None = None) -> bool:
    return (launcher_dir(install, directory) / _CLASS_FILE).is_file()


def _janino(install: SparkInstall) -> list[Path]:
    jars = _jars(install)
    found = [next((j for j in jars if j.name.startswith(p)), None) for p in ("janino-", "commons-compiler-")]
    if None in found:
        raise CloudtikError(
            f"the Hive metastore is compiled with Janino, which {install.spark_home / 'jars'} lacks "
            "(janino-*.jar, commons-compiler-*.jar): reinstall pyspark"
        )
    return [j for j in found if j is not None]


def build_launcher(install: SparkInstall, directory: Path | None = None, *, timeout: float = COMPILE_TIMEOUT) -> Path:
    """Compile the launcher unless it is there; returns its class-path directory. Safe to run concurrently."""
    from .cds import _exclusive

    target = launcher_dir(install, directory)
    if launcher_ready(install, directory):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(target.parent / ".lock", LOCK_TIMEOUT):
        if launcher_ready(install, directory):
            return target  # compiled by whoever held the lock
        with tempfile.TemporaryDirectory(dir=target.parent, prefix="metastore-build-") as tmp:
            out = Path(tmp) / "classes"
            out.mkdir()
            compiler = os.pathsep.join(str(j) for j in _janino(install))
            argv = [str(install.java_home / "bin" / "java"), "-cp", compiler, COMPILER_MAIN, "-d", str(out)]
            argv += ["-classpath", os.pathsep.join(str(j) for j in _jars(install)), str(SOURCE)]
            result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
            if result.returncode != 0 or not (out / _CLASS_FILE).is_file():
                last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no class file written"]
                raise CloudtikError(f"compiling the Hive metastore launcher failed: {last[0]}")
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(target)  # a partial directory left by a crash
            os.replace(out, target)
    return target
