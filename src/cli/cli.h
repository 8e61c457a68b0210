/*
 * cli — the operator commands that have their own file (main.c keeps the table).
 *
 * Each prints to stdout (errors to stderr) and returns the exit status of SPEC.md:
 * 0 ok, 1 usage or configuration error, 2 runtime failure.
 */
#ifndef IMSD_CLI_H
#define IMSD_CLI_H

#include "cfg/cfg.h"
#include "queue/queue.h"

/* Open the spool for a command (lock: exclusively, as the server does), after becoming
 * the spool's owner when run as root (privs_as_spool_owner: a link the run user planted
 * in the spool is never followed as root). 0, or -1 with err. */
int cli_queue_open(const char *spool_dir, int lock, struct queue *q, char *err, size_t errlen);

/* The configuration a subcommand reads: given (-c FILE), else /etc/imsd/imsd.conf when it
 * exists, else NULL (the embedded default). */
const char *cli_conf_path(const char *given);

/* imsd queue --json: the whole queue as one JSON document (read-only, with or without a
 * running server). */
int cli_queue_json(const struct cfg *c);

/* imsd explain-recipient ADDRESS: local or relay, aliases, route, TLS, queued mail. */
int cli_explain_recipient(const struct cfg *c, const char *address);

#endif
