/*
 * cli — the operator commands that have their own file (main.c keeps the table).
 *
 * Each prints to stdout (errors to stderr) and returns the exit status of SPEC.md:
 * 0 ok, 1 usage or configuration error, 2 runtime failure.
 */
#ifndef IMSD_CLI_H
#define IMSD_CLI_H

#include "cfg/cfg.h"

/* imsd queue --json: the whole queue as one JSON document (read-only, with or without a
 * running server). */
int cli_queue_json(const struct cfg *c);

/* imsd explain-recipient ADDRESS: local or relay, aliases, route, TLS, queued mail. */
int cli_explain_recipient(const struct cfg *c, const char *address);

#endif
