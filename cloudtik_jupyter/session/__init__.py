"""The CLI session: a per-user background process that keeps SSH connections and store forwards warm and
runs `cloudtik` commands for a thin client, through the same CLI and API code as in-process.

- `entry`  the `cloudtik` entry point (standard library only): forwards a command, or runs it in-process;
- `client` connects (starting a session on first use, replacing a stale or outdated one) and forwards
  argv, the working directory, the terminal's variables and its stdin/stdout/stderr (the descriptors
  themselves, over the Unix socket), then relays Ctrl-C and returns the exit status;
- `place`  where a session lives and what identifies it (package, code, interpreter, environment);
- `wire`   length-prefixed JSON frames;
- `server` the session: accepts same-uid clients, one thread per command, exits when idle;
- `command` runs one command in its thread: its own streams, terminal variables, cwd and Ctrl-C.
"""
