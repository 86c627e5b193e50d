/*
 * control.h: the node's local control socket (a Unix stream socket in the
 * data dir, mode 0600). A client sends one command line ("status",
 * "metrics"), the node answers with text and closes. Used by `sotto
 * status`. Not a remote API: it never listens on the network.
 */
#ifndef SOTTO_NODE_CONTROL_H
#define SOTTO_NODE_CONTROL_H

struct ev_loop;
struct control;

/*
 * Returns the malloc'd answer to cmd (the node frees nothing of it; the
 * control socket frees it after sending), or NULL for an unknown command.
 * Called on the event loop thread.
 */
typedef char *(*control_cb)(void *arg, const char *cmd);

/*
 * Binds path and serves it on loop. If path exists and a live process
 * answers on it, fails with -EADDRINUSE (another node runs there); a stale
 * socket file is replaced. On success *out is owned by the caller.
 */
int control_start(struct control **out, struct ev_loop *loop, const char *path, control_cb cb,
                  void *arg) __attribute__((warn_unused_result));
/* Closes the socket and every client connection, unlinks path. NULL-safe. */
void control_stop(struct control *c);

/*
 * Client side: sends cmd to the socket at path and returns the malloc'd
 * answer (at most 1 MiB) in *out. Waits at most timeout_s. 0 or -errno.
 */
int control_request(const char *path, const char *cmd, double timeout_s, char **out)
        __attribute__((warn_unused_result));

#endif
