"""Submit a job to the cluster's runtime, on the head: ``python3 -m cloudtik_jupyter.runtimes.submit JOB [ARGS]``.

Runs on the head because the submit command depends on the head's own paths (event logs) and address;
`cloudtik submit` uploads the job and runs this over SSH.
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import paths
from ..config import load_config
from ..errors import CloudtikError
from ..records import node_env
from ..records.layout import CONFIG_FILE, RUNTIME_DIR
from . import enabled_runtimes, runtime_environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m cloudtik_jupyter.runtimes.submit")
    parser.add_argument("--runtime", help="runtime to submit to (default: the first enabled one)")
    parser.add_argument("job")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        state = paths.node_state_dir()
        config = load_config(state / CONFIG_FILE, check_files=False)
        enabled = {runtime.name: (runtime, cfg) for runtime, cfg in enabled_runtimes(config)}
        name = args.runtime or next(iter(enabled), None)
        if name is None or name not in enabled:
            raise CloudtikError(f"no runtime {name or ''} enabled here (runtime.types: {list(enabled)})")
        runtime, cfg = enabled[name]
        head_ip = os.environ.get(node_env.HEAD_IP) or os.environ[node_env.NODE_IP]
        command = runtime.submit_argv(cfg, head_ip, args.job, args.args, runtime_dir=state / RUNTIME_DIR)
        os.environ.update(runtime_environment(config, head_ip))  # resolved now: a moved server is found
    except (CloudtikError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    os.execvp(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
