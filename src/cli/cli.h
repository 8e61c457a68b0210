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
#include "server/privs.h"

/* Open the spool for a command (lock: exclusively, as the server does), after becoming
 * the spool's owner when run as root (privs_as_spool_owner: a link the run user planted
 * in the spool is never followed as root). 0, or -1 with err. */
int cli_queue_open(const char *spool_dir, int lock, struct queue *q, char *err, size_t errlen);

/*
 * Root's check of a configuration the server will read as run_user: the server reads every
 * file again as that user on a reload (and under systemd, User=imsd, from the start), so a
 * recipients file or key only root can read passes root's check and fails the server. The
 * configuration at path (c: as root loaded it) is loaded once more in a child that has
 * become run_user; with check_dirs, that child also asks privs_check_dir whether it can
 * reach and write spool_dir and mail_dir, as the server does after the switch. *pv: who
 * that is (pv->switch_user 0: nobody to switch to, nothing was checked). Returns
 * CLI_RUNUSER_OK, CLI_RUNUSER_FAIL (msg says what and how to repair it) or CLI_RUNUSER_NOTE
 * (the default run_user does not exist on this machine, a build host: msg says so).
 */
enum { CLI_RUNUSER_OK, CLI_RUNUSER_FAIL, CLI_RUNUSER_NOTE };
int cli_as_run_user(const char *path, const struct cfg *c, int check_dirs, struct privs *pv,
    char *msg, size_t msglen);
/* The configuration a subcommand reads: given (-c FILE), else /etc/imsd/imsd.conf when it
 * exists, else NULL (the embedded default). */
const char *cli_conf_path(const char *given);

/* imsd queue --json: the whole queue as one JSON document (read-only, with or without a
 * running server). */
int cli_queue_json(const struct cfg *c);

/* imsd explain-recipient ADDRESS: local or relay, aliases, route, TLS, queued mail. */
int cli_explain_recipient(const struct cfg *c, const char *address);

#endif
