/*
 * sendmail — the sendmail(1) interface of imsd: `imsd sendmail ...`, or the binary called
 * as sendmail or mailq. Messages go to the running server over spool_dir/submit (SMTP on a
 * unix socket; the server learns the uid from the kernel) or, when no server answers, into
 * spool_dir/maildrop, which the server picks up when it starts and every few seconds.
 * Exit status per sysexits.h.
 */
#ifndef IMSD_CLI_SENDMAIL_H
#define IMSD_CLI_SENDMAIL_H

/* The configuration sendmail uses without -c/-C, when it exists (else the embedded one). */
#define SENDMAIL_DEFAULT_CONF	"/etc/imsd/imsd.conf"

/* argv[first..] are sendmail's options and recipients. as_mailq: called as mailq.
 * subcommand runs an imsd subcommand (argv[1] its name) for -bp and -q. */
int sendmail_main(int argc, char **argv, int first, int as_mailq,
    int (*subcommand)(int argc, char **argv));

#endif
