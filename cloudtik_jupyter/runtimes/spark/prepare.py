"""Setup step on every node: ``python3 -m cloudtik_jupyter.runtimes.spark.prepare [--roles R,..] [--no-cds]``.

Checks that pyspark and a JDK Spark accepts are installed (exit 1 with what to install otherwise) and makes
the class-data-sharing archives of this node's daemons once per machine; with ``--metastore``, compiles the
Hive metastore's launcher once per machine (exit 1 if it cannot: the head could not serve its metastore).
Idempotent: a re-run with everything in place takes ~0.1 s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from ...errors import CloudtikError
from .classes import ROLE_CLASSES

MODULE = "cloudtik_jupyter.runtimes.spark.prepare"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python3 -m {MODULE}", description=__doc__)
    parser.add_argument("--roles", default="", help="daemons this node runs: master,history,worker")
    parser.add_argument("--no-cds", action="store_true", help="do not make class-data-sharing archives")
    parser.add_argument("--metastore", action="store_true", help="compile the Hive metastore's launcher")
    args = parser.parse_args(argv)
    roles = [r for r in args.roles.split(",") if r]
    if unknown := [r for r in roles if r not in ROLE_CLASSES]:
        parser.error(f"unknown role(s) {', '.join(unknown)}; known: {', '.join(ROLE_CLASSES)}")

    from .install import find_spark

    try:
        install = find_spark()
    except CloudtikError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(
        f"spark {install.spark_version} at {install.spark_home}; java {install.java_version} at {install.java_home}"
    )
    if args.metastore:
        from .launcher import build_launcher, launcher_ready

        if not launcher_ready(install):
            try:
                print(f"made {build_launcher(install)}")
            except (CloudtikError, OSError, subprocess.SubprocessError) as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
    if args.no_cds or not roles:
        return 0
    from .archives import missing_archives

    if not missing_archives(install, roles):
        return 0  # the usual case: made once per machine; the builder's imports are not needed

    from .cds import build_archives

    try:
        made = build_archives(install, roles)
    except (CloudtikError, OSError, subprocess.SubprocessError) as e:
        # Only slower starts follow; the daemons run without an archive.
        print(f"warning: no class-data-sharing archive for {','.join(roles)}: {e}", file=sys.stderr)
        return 0
    for path in made:
        print(f"made {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
