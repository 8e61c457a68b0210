/*
 * cli — the operator commands that have their own file (main.c keeps the table).
 *
 * Each prints to stdout (errors to stderr) and returns the exit status of SPEC.md:
 * 0 ok, 1 usage or configuration error, 2 runtime failure.
 */
#ifndef IMSD_CLI_H
#define IMSD_CLI_H

#include "cfg/cfg.h"

/* The configuration a subcommand reads: given (-c FILE), else /etc/imsd/imsd.conf when it
 * exists, else NULL (the embedded default). */
const char *cli_conf_path(const char *given);

/* imsd queue --json: the whole queue as one JSON document (read-only, with or without a
 * running server). */
int cli_queue_json(const struct cfg *c);

/* imsd explain-recipient ADDRESS: local or relay, aliases, route, TLS, queued mail. */
int cli_explain_recipient(const struct cfg *c, const char *address);

#endif
