#!/bin/sh
# Run a command (the test suite) in a private network namespace whose only
# interface is loopback: every server the tests start binds 127.0.0.1, and no
# test, client library (the XRootD client resolves the host's interface names
# at start-up) or browser can send a packet beyond this machine.
# Without the privilege to make a namespace, the command runs on the host
# network and a note says so.
if unshare --net true 2>/dev/null; then
    exec unshare --net sh -c 'ip link set lo up && exec "$@"' isolated "$@"
fi
echo "note: cannot create a network namespace (needs root); running without isolation" >&2
exec "$@"
