/*
 * imsd doctor: the configuration, as the server and its run user read it; see doctor.h.
 */
#include <ctype.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/doctor.h"
#include "server/privs.h"

#define MAILNAME	"/etc/mailname"

static void
set_user(struct doctor *d, const char *name, uid_t uid, gid_t gid)
{
	snprintf(d->run_user, sizeof(d->run_user), "%s", name);
	d->run_uid = uid;
	d->run_gid = gid;
	d->run_user_known = 1;
}

/* Who the server serves as: privs_plan's answer as root; otherwise run_user's account (the
 * server started by systemd as that user), else whoever runs doctor. */
static void
find_run_user(struct doctor *d, const struct privs *pv)
{
	const struct conf *cf = &d->c->conf;
	struct passwd *pw;

	if (pv->switch_user)
		set_user(d, pv->name, pv->uid, pv->gid);
	else if (pv->stay_root || (cf->run_user && strcmp(cf->run_user, "root") == 0 &&
	    cf->set[CK_RUN_USER]))
		set_user(d, "root", 0, 0);
	else if ((pw = getpwnam(cf->run_user ? cf->run_user : "imsd")) != NULL && pw->pw_uid != 0)
		set_user(d, pw->pw_name, pw->pw_uid, pw->pw_gid);
	else if ((pw = getpwuid(geteuid())) != NULL)
		set_user(d, pw->pw_name, pw->pw_uid, pw->pw_gid);
}

/* The first line of /etc/mailname, trimmed; 0, or -1 when there is none. */
static int
read_mailname(char *buf, size_t len)
{
	FILE *fp = fopen(MAILNAME, "r");
	size_t n;

	if (fp == NULL)
		return -1;
	if (fgets(buf, (int)len, fp) == NULL)
		buf[0] = '\0';
	fclose(fp);
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		buf[--n] = '\0';
	for (char *p = buf; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return 0;
}

/* The domains the world sends to and receives from this host as: local_domains and the
 * dkim_sign domains, those other hosts can look up. */
static void
collect_domains(struct doctor *d)
{
	const struct conf *cf = &d->c->conf;
	char why[300];

	for (size_t k = 0; k < cf->nlocal_domains + cf->ndkim_sign; k++) {
		int local = k < cf->nlocal_domains;
		const char *dom = local ? cf->local_domains[k] :
		    cf->dkim_sign[k - cf->nlocal_domains].domain;
		size_t i;

		if (!doc_name_is_fqdn(dom, why, sizeof(why)))
			continue;
		for (i = 0; i < d->ndomains; i++)
			if (strcasecmp(d->domains[i], dom) == 0)
				break;
		if (i < d->ndomains) {
			d->domain_local[i] |= local;
			continue;
		}
		if (d->ndomains == DOC_DOMAINS_MAX)
			break;
		snprintf(d->domains[d->ndomains], sizeof(d->domains[0]), "%s", dom);
		d->domain_local[d->ndomains++] = local;
	}
}

int
doc_check_config(struct doctor *d)
{
	char err[1024], found[1400], fix[1400], why[400], msg[1400];
	struct privs pv;
	const struct conf *cf;
	int r;

	if ((d->c = cfg_load(d->conf_path, 0, err, sizeof(err))) == NULL) {
		snprintf(found, sizeof(found), "%s", err);
		doc_add(d, DOC_FAIL, "config", d->conf_path ? d->conf_path : "(embedded default)",
		    found, "imsd refuses to start (and to reload) with this configuration, and "
		    "nothing else can be checked until it loads", "correct the line and key named, "
		    "then run imsd check");
		return -1;
	}
	cf = &d->c->conf;
	memset(&pv, 0, sizeof(pv));
	r = cli_as_run_user(d->conf_path, d->c, 1, &pv, msg, sizeof(msg));
	find_run_user(d, &pv);
	if (r == CLI_RUNUSER_FAIL) {
		char fx[600];
		snprintf(fx, sizeof(fx), "make what is named readable by %s (a file: chgrp %s FILE "
		    "&& chmod 0640 FILE; a directory: chown it to %s, and let it pass through every "
		    "directory above it: chmod o+x), or fix the line named", pv.name, pv.name,
		    pv.name);
		doc_add(d, DOC_FAIL, "config", cf->source, msg, "the server reads its files as "
		    "the run user on every start under systemd and on every reload, and works in "
		    "spool_dir and mail_dir as that user: what only root can reach stops it",
		    pv.switch_user ? fx : "fix the line named, then run imsd check");
	} else if (r == CLI_RUNUSER_NOTE) {
		doc_add(d, DOC_WARN, "config", cf->source, msg, "imsd started as root serves as "
		    "run_user and refuses to start without it", "adduser --system --group "
		    "--no-create-home imsd");
	} else if (pv.switch_user) {
		snprintf(found, sizeof(found), "valid; read again as %s (uid %ld), the user the "
		    "server runs as: every file it names is readable, and spool_dir and mail_dir "
		    "are reachable and writable", pv.name, (long)pv.uid);
		doc_add(d, DOC_OK, "config", cf->source, found, NULL, NULL);
	} else {
		snprintf(found, sizeof(found), "valid; read as %s, who runs this check%s",
		    d->run_user[0] ? d->run_user : "this user",
		    pv.stay_root ? " (run_user = root: the server keeps root)" : "");
		doc_add(d, DOC_OK, "config", cf->source, found, NULL, NULL);
	}
	if (pv.stay_root)
		doc_add(d, DOC_WARN, "config.run-user", cf->source, "run_user = root: every session, "
		    "Maildir write and relay connection runs as root", "a bug in any part of a "
		    "mail server reachable from the Internet is then a root compromise",
		    "adduser --system --group --no-create-home imsd, and remove run_user = root "
		    "(the default is imsd)");

	/* the host name: banner, EHLO, Received, the name PTR and SPF are judged by */
	if (!doc_name_is_fqdn(cf->hostname, why, sizeof(why))) {
		snprintf(found, sizeof(found), "%s (%s)", why, cf->set[CK_HOSTNAME] ?
		    "hostname in the configuration" : "the system host name; hostname is not set");
		doc_add(d, DOC_FAIL, "config.hostname", cf->hostname, found, "receivers check the "
		    "EHLO name: a name that does not resolve gets mail refused or junked (RFC 5321 "
		    "4.1.1.1 wants a fully qualified domain name)", "set hostname = mail.example.org "
		    "(the name the PTR of this host's address gives) in the configuration");
	} else {
		snprintf(found, sizeof(found), "the name in the banner, EHLO and Received (%s)",
		    cf->set[CK_HOSTNAME] ? "hostname" : "the system host name");
		doc_add(d, DOC_OK, "config.hostname", cf->hostname, found, NULL, NULL);
	}

	/* /etc/mailname: Debian's mail name of the host, which programs put after user@ */
	{
		char mn[256];
		if (read_mailname(mn, sizeof(mn)) == 0) {
			if (mn[0] == '\0' || (!conf_is_local_domain(cf, mn) &&
			    strcasecmp(mn, cf->hostname) != 0)) {
				snprintf(found, sizeof(found), "%s names %s, which is not in "
				    "local_domains (%s%s)", MAILNAME, mn[0] ? mn : "nothing",
				    cf->nlocal_domains ? cf->local_domains[0] : "",
				    cf->nlocal_domains > 1 ? ", ..." : "");
				snprintf(fix, sizeof(fix), "add %s to local_domains, or write %s into %s",
				    mn[0] ? mn : "it", cf->nlocal_domains ? cf->local_domains[0] :
				    cf->hostname, MAILNAME);
				doc_add(d, DOC_WARN, "config.mailname", MAILNAME, found, "programs "
				    "that read it (mail, cron, Debian's tools) send as user@mailname; "
				    "replies and bounces to that address are relayed away instead of "
				    "delivered here", fix);
			} else {
				snprintf(found, sizeof(found), "%s, %s", mn,
				    conf_is_local_domain(cf, mn) ? "in local_domains" :
				    "the host name");
				doc_add(d, DOC_OK, "config.mailname", MAILNAME, found, NULL, NULL);
			}
		}
	}

	/* keys that are parsed but do nothing yet */
	for (int k = 0; k < CK__COUNT; k++)
		if (conf_not_in_effect(cf, (enum conf_key)k)) {
			snprintf(found, sizeof(found), "line %u: %s is set but not yet in effect in "
			    "imsd %s", cf->set_line[k], conf_key_name((enum conf_key)k), "this version");
			snprintf(fix, sizeof(fix), "remove %s until imsd implements it, or rely on "
			    "what imsd check prints as in effect", conf_key_name((enum conf_key)k));
			doc_add(d, DOC_WARN, "config.keys", cf->source, found, "the setting looks "
			    "active and is not", fix);
		}
	collect_domains(d);
	return 0;
}
