"""Every command of `cloudtik` and `%cloudtik`, once: arguments, options, defaults and help.

Both fronts are built from this table (cli/build.py, jupyter/commands.py); tests/unit/test_command_grammar.py
checks them against it and against the README's command tables.
"""

from __future__ import annotations

from .model import BOTH, MAGIC_ONLY, Arg, Body, Command, Front, Opt

GROUPS = {
    "workspace": "Create and manage workspaces: the network, firewall, roles and storage clusters share."
}
SECTIONS = {
    "cluster": "Clusters",
    "nodes": "Commands and files on nodes",
    "runtime": "Runtimes",
    "workspace": "Workspaces",
}

# Every command takes these.
COMMON = (
    Opt("debug", ("--debug",), "show the full traceback on errors"),
    Opt("quiet", ("--quiet", "-q"), "no progress or command output"),
)

CLUSTER = Arg("cluster", "CLUSTER", "cluster name or config file (in a notebook also a Cluster variable)")
CONFIG = Arg("config", "CONFIG", "YAML config file (in a notebook also a dict or config variable)")
NODE = Opt("node", ("--node",), "node id, seq id, address or name (default: the head)", str, metavar="N")
ALL_NODES = Opt("all_nodes", ("--all-nodes",), "every node, in parallel")
YES = Opt("yes", ("--yes", "-y"), "don't ask for confirmation (notebooks never ask)")
WORKSPACE = Arg("workspace", "WORKSPACE", "workspace name or config file")


def _c(
    name: str,
    section: str,
    help: str,
    description: str = "",
    *,
    args: tuple[Arg, ...] = (),
    opts: tuple[Opt, ...] = (),
    body: Body | None = None,
    fronts: frozenset[Front] = BOTH,
    notebook: str = "",
) -> Command:
    return Command(name, section, help, description, args, (*opts, *COMMON), body, fronts, notebook)


COMMANDS: tuple[Command, ...] = (
    # -- clusters -----------------------------------------------------------------------------------
    _c(
        "up",
        "cluster",
        "create or update a cluster; re-running converges (also after an interruption)",
        "Create or update the cluster of CONFIG. In a notebook it returns the Cluster\n"
        "(`c = %cloudtik up small.yaml`); with %%cloudtik up the cell body is the YAML config\n"
        "(`from: virtual-small` starts from a shipped template).",
        args=(Arg("config", "CONFIG", CONFIG.help, from_body=True),),
        opts=(
            Opt(
                "no_wait",
                ("--no-wait",),
                "return once the head is ready; the head's controller brings the workers up "
                "(a notebook shows them arrive in a live view)",
                aliases=("--no-workers",),
            ),
            YES,
        ),
        body="yaml",
    ),
    _c(
        "down",
        "cluster",
        "terminate every node of a cluster",
        args=(CLUSTER,),
        opts=(YES,),
    ),
    _c(
        "status",
        "cluster",
        "nodes, heartbeats, cpu and memory of a cluster",
        "The cluster's nodes and their state; exits 1 when the cluster needs action (a half-dead head: "
        "`up` repairs it). In a notebook: a live view (--once: a snapshot).",
        args=(CLUSTER,),
        opts=(
            Opt("once", ("--once",), "a ClusterStatus snapshot instead of the live view", fronts=MAGIC_ONLY),
            Opt("view", ("--view",), "the live view even outside a notebook", fronts=MAGIC_ONLY),
        ),
    ),
    _c("info", "cluster", "addresses, service links and how to reach a cluster", args=(CLUSTER,)),
    _c(
        "scale",
        "cluster",
        "ask the head's controller for N workers (within min/max)",
        args=(CLUSTER, Arg("workers", "N", "how many workers", int, option=("--workers", "-w"))),
        opts=(
            Opt("node_type", ("--node-type",), "worker node type (default: the only one)", str, metavar="T"),
            Opt("no_wait", ("--no-wait",), "return once the head has the request"),
        ),
    ),
    _c(
        "wait-for-ready",
        "cluster",
        "wait until every desired worker is up-to-date",
        args=(CLUSTER,),
        opts=(Opt("timeout", ("--timeout",), "seconds", float, 300.0, metavar="S"),),
    ),
    _c(
        "kill-node",
        "cluster",
        "terminate a node as a failing instance would (to watch recovery)",
        args=(CLUSTER,),
        opts=(
            Opt(
                "node",
                ("--node",),
                "node id, seq id, address or name (default: a random worker)",
                str,
                metavar="N",
            ),
            YES,
        ),
    ),
    _c(
        "monitor",
        "cluster",
        "follow the controller's and agents' events",
        "Follow the cluster's events until interrupted (Ctrl-C, or the notebook's stop button).",
        args=(CLUSTER,),
        opts=(
            Opt("history", ("--history",), "past events to show first", int, 20, metavar="K"),
            Opt("timeout", ("--timeout",), "stop following after S seconds", float, metavar="S"),
        ),
    ),
    _c("head-ip", "cluster", "the head's public address", args=(CLUSTER,)),
    _c("worker-ips", "cluster", "the workers' private addresses, one per line", args=(CLUSTER,)),
    _c("list", "cluster", "clusters known on this machine"),
    # -- nodes --------------------------------------------------------------------------------------
    _c(
        "exec",
        "nodes",
        "run a shell command on the head, a node or every node",
        "Run COMMAND on the head (default), one node or every node; output streams as it comes.\n"
        "Options go before COMMAND, or after it when COMMAND is one quoted word; `--` ends them.\n"
        "The CLI exits with the command's status (the worst, with --all-nodes); with %%cloudtik exec\n"
        "CLUSTER the cell body is the script, and the cell returns the results.",
        args=(CLUSTER, Arg("command", "COMMAND", "the shell command", rest=True, from_body=True)),
        opts=(
            NODE,
            ALL_NODES,
            Opt("check", ("--check",), "fail the cell if any node exits non-zero", fronts=MAGIC_ONLY),
        ),
        body="script",
    ),
    _c(
        "attach",
        "nodes",
        "interactive shell on a node",
        args=(CLUSTER,),
        opts=(NODE,),
        notebook="a cell has no terminal: prints the command to run in a JupyterLab terminal",
    ),
    _c(
        "upload",
        "nodes",
        "copy a local file or directory to nodes (SFTP)",
        args=(
            CLUSTER,
            Arg("local", "LOCAL", "file or directory here", local_file="path"),
            Arg("remote", "REMOTE", "path on the node"),
        ),
        opts=(NODE, ALL_NODES),
    ),
    _c(
        "download",
        "nodes",
        "copy a file or directory from a node",
        args=(CLUSTER, Arg("remote", "REMOTE", "path on the node"), Arg("local", "LOCAL", "path here")),
        opts=(NODE,),
    ),
    # -- runtimes -----------------------------------------------------------------------------------
    _c(
        "submit",
        "runtime",
        "upload JOB to the head and submit it to the runtime (spark-submit)",
        "Upload JOB to the head and submit it to the cluster's runtime; its output streams as it comes.\n"
        "Options go before JOB; every word after JOB is the job's own argument.",
        args=(
            CLUSTER,
            Arg("job", "JOB", "the job's file here (a .py for Spark)", local_file="file"),
            Arg("job_args", "ARGS", "the job's arguments", many=True, rest=True),
        ),
        opts=(
            Opt(
                "runtime",
                ("--runtime",),
                "runtime to submit to (default: the first enabled)",
                str,
                metavar="R",
            ),
        ),
    ),
    _c(
        "sql",
        "runtime",
        "run Spark SQL on a cluster and show the first rows",
        "Run QUERY (or the cell body: statements separated by `;`) as Spark SQL through one long-lived\n"
        "SparkSession in this kernel; shows the first rows with the row count and the time taken.",
        args=(CLUSTER, Arg("query", "QUERY", "the SQL (or the cell body)", rest=True, from_body=True)),
        opts=(
            Opt(
                "output",
                ("--output", "-o"),
                "store the result as a pandas DataFrame in this variable",
                str,
                metavar="NAME",
            ),
            Opt("limit", ("--limit",), "rows to show", int, 20, metavar="K"),
            Opt(
                "max_rows",
                ("--max-rows",),
                "rows to fetch (default 10000, or all with -o; 0: all)",
                int,
                metavar="M",
            ),
        ),
        body="sql",
        fronts=MAGIC_ONLY,
    ),
    # -- workspaces ---------------------------------------------------------------------------------
    _c(
        "workspace create",
        "workspace",
        "create a workspace; re-running converges (also after an interruption)",
        "Create the workspace of CONFIG; with %%cloudtik workspace create the cell body is the YAML.",
        args=(Arg("config", "CONFIG", "workspace YAML file", from_body=True),),
        opts=(YES,),
        body="yaml",
    ),
    _c(
        "workspace update",
        "workspace",
        "apply a changed config (e.g. allowed SSH CIDRs) to a workspace",
        args=(Arg("config", "CONFIG", "workspace YAML file", from_body=True),),
        opts=(YES,),
        body="yaml",
    ),
    _c(
        "workspace delete",
        "workspace",
        "delete everything a workspace created (refuses while clusters run in it)",
        args=(WORKSPACE,),
        opts=(YES, Opt("force", ("--force",), "take down its clusters and empty its bucket first")),
    ),
    _c(
        "workspace status", "workspace", "each resource of a workspace: present or missing", args=(WORKSPACE,)
    ),
    _c("workspace info", "workspace", "ids and names of a workspace's resources", args=(WORKSPACE,)),
    _c("workspace list", "workspace", "workspaces created from this machine"),
)

BY_NAME = {c.name: c for c in COMMANDS}


def find(name: str) -> Command | None:
    return BY_NAME.get(name)


def commands(front: str, group: str | None = None) -> list[Command]:
    """The commands of `front` directly under `group` (None: the top level)."""
    return [c for c in COMMANDS if front in c.fronts and c.group == group]
