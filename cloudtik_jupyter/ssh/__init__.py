"""SSH channel to nodes: keys, pinned host keys and the asyncssh runner (exec, jump, SFTP, forwards, attach).

Import the submodules (``ssh.runner``, ``ssh.keys``, ``ssh.host_keys``) directly: this package stays empty so
importing it does not load asyncssh.
"""
