/*
 * authcli — the mail-authentication subcommands: dkim-keygen, explain-auth, and what
 * `imsd check` says about signing and inbound checks.
 */
#ifndef IMSD_AUTHCLI_H
#define IMSD_AUTHCLI_H

#include <stdio.h>

#include "cfg/cfg.h"

int authcli_keygen(int argc, char **argv);
int authcli_explain(int argc, char **argv);
void authcli_check_report(const struct cfg *c, FILE *fp);
/* The TXT record line for a key: "SEL._domainkey.DOM. IN TXT "..." "..."" (strings of at
 * most 255 characters, as DNS requires, on one line). */
void authcli_print_record(FILE *fp, const char *domain, const char *selector,
    const char *record);

#endif
