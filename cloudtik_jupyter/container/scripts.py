"""The shell that runs on a node (over SSH) to start, find, enter and remove its container.

The container lives exactly as long as a *keeper* on the node: ``docker run -i`` stays attached with its
stdin on a FIFO it holds open itself, and the container's main process reads that stdin. When the node
goes (a VM terminated, a virtual node's process tree killed), the keeper goes with it, Docker closes the
container's stdin (``StdinOnce``), the main process sees EOF, and the container stops and is removed
(``--rm``). So no container outlives its node, and `down` needs no extra step to remove them.
"""

from __future__ import annotations

import shlex

from .spec import LABEL_SPEC, MAIN_PROCESS, ContainerSpec, Mount

# Per node, under its home (shared with the container): the keeper's FIFO and log, the container's name.
STATE_DIR = "~/.cloudtik/container"
_DIR = '"$HOME"/.cloudtik/container'
AGENT_PID_FILE = '"$HOME"/.cloudtik/node/agent/agent.pid'  # node/start.py: <node state>/agent/agent.pid
HANDOVER_MODULE = "cloudtik_jupyter.container.handover"
# Exit statuses of the start script that need no output parsing.
NO_DOCKER, NO_IMAGE = 97, 98


def shell_path(path: str) -> str:
    """A path as a shell word; ``~`` and ``~/x`` resolve against the node's $HOME."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def in_home(remote: str) -> bool:
    """Whether an upload/download path is under the node's home (shared by host and container)."""
    return remote == "~" or remote.startswith("~/") or not remote.startswith("/")


def _volume(mount: Mount) -> str:
    mode = ":ro" if mount.read_only else ""
    return f"-v {shell_path(mount.source)}:{shell_path(mount.target)}{mode}"


def run_command(spec: ContainerSpec) -> str:
    """`docker run` for the spec, attached to the keeper FIFO, in the background; prints the keeper's pid."""
    words = [
        "docker run -i --rm --init",
        f"--name {shlex.quote(spec.name)}",
        *(f"--label {shlex.quote(f'{k}={v}')}" for k, v in spec.labels),
        f"--label {shlex.quote(f'{LABEL_SPEC}={spec.digest}')}",
        "--network=host",
        '--user "$(id -u):$(id -g)"',
        '--workdir "$HOME"',
        *(f"-e {name}" for name in spec.env_names),
        f"-e CLOUDTIK_CONTAINER={shlex.quote(spec.name)}",
        *(_volume(m) for m in spec.mounts),
        *(shlex.quote(o) for o in spec.options),
        f"--entrypoint {MAIN_PROCESS}",
        shlex.quote(spec.image),
    ]
    return " ".join(words) + f' 0<>{_DIR}/keeper >{_DIR}/keeper.log 2>&1 &\necho "$!"'


def inspect_script(spec: ContainerSpec) -> str:
    """Prints ``reused`` when the container runs with this very spec; else removes any stale one and
    prints ``removed`` or ``absent``."""
    name = shlex.quote(spec.name)
    return f"""command -v docker >/dev/null 2>&1 || {{
  echo "docker is not installed on this node: install it (initialization_commands) or set docker.enabled: false" >&2
  exit {NO_DOCKER}
}}
state=$(docker container inspect -f '{{{{.State.Running}}}} {{{{index .Config.Labels "{LABEL_SPEC}"}}}}' {name} 2>/dev/null)
if [ "$state" = "true {spec.digest}" ]; then echo reused; exit 0; fi
if [ -n "$state" ]; then docker rm -f {name} >/dev/null 2>&1; echo removed; else echo absent; fi"""


def start_script(spec: ContainerSpec) -> str:
    """Make the image available, hand the node over from an agent running outside (host mode before),
    then start the container; prints the keeper's pid."""
    image = shlex.quote(spec.image)
    if spec.pull:
        fetch = f"docker pull -q {image} >/dev/null"
    else:
        fetch = f"""docker image inspect {image} >/dev/null 2>&1 || {{
  echo "image {spec.image} is not on this node: build it there first, or set docker.pull_before_run: true" >&2
  exit {NO_IMAGE}
}}"""
    return f"""set -e
{fetch}
mkdir -p {_DIR} && chmod 700 {_DIR}
[ -p {_DIR}/keeper ] || mkfifo -m 600 {_DIR}/keeper
printf '%s\\n' {shlex.quote(spec.name)} > {_DIR}/name
pid=$(cat {AGENT_PID_FILE} 2>/dev/null || true)
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then python3 -m {HANDOVER_MODULE}; fi
{run_command(spec)}"""


def status_script(name: str, keeper_pid: int) -> str:
    """``running``, ``starting``, or ``exited`` followed by the keeper's log."""
    quoted = shlex.quote(name)
    return f"""if [ "$(docker container inspect -f '{{{{.State.Running}}}}' {quoted} 2>/dev/null)" = true ]; then
  echo running
elif kill -0 {keeper_pid} 2>/dev/null; then echo starting
else echo exited; tail -n 20 {_DIR}/keeper.log 2>/dev/null; fi"""


def gone_script(name: str) -> str:
    return f"docker container inspect {shlex.quote(name)} >/dev/null 2>&1 && echo present || echo gone"


def leave_container_script() -> str:
    """Host mode: remove the container a previous container-mode setup left on this node (its agent and
    services go with it), so the node's services run on the node again."""
    return f"""if [ -f {_DIR}/name ]; then
  docker rm -f "$(cat {_DIR}/name)" >/dev/null 2>&1 || true
  rm -rf {_DIR}
fi"""


def exec_command(name: str, command: str, *, tty_if_terminal: bool = False) -> str:
    """`command` run by bash inside the container (a pty only when the session has one)."""
    tty = ' $([ -t 0 ] && printf %s "-t -e TERM")' if tty_if_terminal else ""
    return f"docker exec -i{tty} {shlex.quote(name)} /bin/bash -c {shlex.quote(command)}"


def copy_in_script(name: str, staged: str, remote: str, is_dir: bool) -> str:
    """Copy a staged upload (under the home) to `remote` in the container, then drop the staging copy."""
    quoted = shlex.quote(name)
    parent = remote.rstrip("/").rsplit("/", 1)[0] or "/"
    source = f"{shell_path(staged)}/." if is_dir else shell_path(staged)
    return (
        f"docker exec {quoted} mkdir -p {shlex.quote(remote if is_dir else parent)} && "
        f"docker cp {source} {quoted}:{shlex.quote(remote)}; status=$?; rm -rf {shell_path(staged)}; exit $status"
    )


def copy_out_script(name: str, remote: str, staged: str) -> str:
    return f"mkdir -p {_DIR} && docker cp {shlex.quote(name)}:{shlex.quote(remote)} {shell_path(staged)}"
