/*
 * imsd doctor — the run, the lines and their output; see doctor.h.
 */
#include "cli/doctor.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/json.h"
#include "util/str.h"
#include "util/version.h"

void
doc_add(struct doctor *d, enum doc_status st, const char *check, const char *subject,
    const char *found, const char *why, const char *fix)
{
	struct doc_line *l;

	if (d->nlines == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 64;
		struct doc_line *n = realloc(d->lines, nc * sizeof(*n));
		if (n == NULL) {
			fprintf(stderr, "imsd: doctor: out of memory\n");
			exit(2);
		}
		d->lines = n;
		d->cap = nc;
	}
	l = &d->lines[d->nlines++];
	memset(l, 0, sizeof(*l));
	l->st = st;
	str_copy(l->check, sizeof(l->check), check);
	str_copy(l->subject, sizeof(l->subject), subject ? subject : "");
	str_copy(l->found, sizeof(l->found), found ? found : "");
	if (st != DOC_OK) {
		str_copy(l->why, sizeof(l->why), why ? why : "");
		str_copy(l->fix, sizeof(l->fix), fix ? fix : "");
	}
	if (!d->json && !d->quiet) {
		fprintf(d->out, "%-4s %-15s %s%s%s", doc_status_name(l->st), l->check, l->subject,
		    l->subject[0] && l->found[0] ? ": " : "", l->found);
		if (l->why[0])
			fprintf(d->out, " -- why: %s", l->why);
		if (l->fix[0])
			fprintf(d->out, " -- fix: %s", l->fix);
		fputc('\n', d->out);
		fflush(d->out);
	}
}

int
doc_addr_is_ours(const struct doctor *d, const struct netaddr *a)
{
	for (size_t i = 0; i < d->naddrs; i++)
		if (netaddr_equal(&d->addrs[i], a))
			return 1;
	return 0;
}

static void
put_kv(FILE *o, const char *k, const char *v, int comma)
{
	fprintf(o, "%s\"%s\": ", comma ? ", " : "", k);
	json_put_string(o, v);
}

/* The whole run as one JSON document (imsd doctor --json). */
static void
print_json(const struct doctor *d, size_t counts[3], time_t started)
{
	FILE *o = d->out;
	char b[NETADDR_STRLEN];

	fprintf(o, "{");
	put_kv(o, "imsd", IMSD_VERSION, 0);
	put_kv(o, "config", d->c ? d->c->conf.source : d->conf_path ? d->conf_path :
	    "(embedded default)", 1);
	fprintf(o, ", \"hostname\": ");
	json_put_string(o, d->c ? d->c->conf.hostname : NULL);
	fprintf(o, ", \"addresses\": [");
	for (size_t i = 0; i < d->naddrs; i++) {
		fprintf(o, "%s", i ? ", " : "");
		json_put_string(o, netaddr_str(&d->addrs[i], b, sizeof(b)));
	}
	fprintf(o, "], \"checked_at\": %lld, \"ok\": %zu, \"warn\": %zu, \"fail\": %zu, "
	    "\"checks\": [", (long long)started, counts[DOC_OK], counts[DOC_WARN],
	    counts[DOC_FAIL]);
	for (size_t i = 0; i < d->nlines; i++) {
		const struct doc_line *l = &d->lines[i];
		fprintf(o, "%s\n  {", i ? "," : "");
		put_kv(o, "check", l->check, 0);
		put_kv(o, "subject", l->subject, 1);
		put_kv(o, "status", doc_status_name(l->st), 1);
		put_kv(o, "found", l->found, 1);
		fprintf(o, ", \"why\": ");
		json_put_string(o, l->why[0] ? l->why : NULL);
		fprintf(o, ", \"fix\": ");
		json_put_string(o, l->fix[0] ? l->fix : NULL);
		fprintf(o, "}");
	}
	fprintf(o, "%s]}\n", d->nlines ? "\n" : "");
}

int
cli_doctor(const char *conf_path, int json, const char *const *addrs, size_t naddrs)
{
	struct doctor d;
	size_t counts[3] = { 0, 0, 0 };
	time_t started = time(NULL);
	int r;

	memset(&d, 0, sizeof(d));
	d.conf_path = conf_path;
	d.json = json;
	d.out = stdout;
	for (size_t i = 0; i < naddrs; i++) {
		if (d.naddrs == DOC_ADDRS_MAX)
			break;
		if (netaddr_parse(addrs[i], &d.addrs[d.naddrs]) < 0) {
			fprintf(stderr, "imsd: doctor: --address %s is not an IP address\n", addrs[i]);
			return 1;
		}
		d.naddrs++;
		d.addrs_given = 1;
	}
	if (doc_check_config(&d) == 0) {
		doc_find_addresses(&d);
		doc_check_spool(&d);
		doc_check_dns_host(&d);
		doc_check_tls(&d);
		doc_check_dns_auth(&d);
		doc_check_service(&d);
		doc_check_queue(&d);
	}
	for (size_t i = 0; i < d.nlines; i++)
		counts[d.lines[i].st]++;
	r = counts[DOC_FAIL] ? 1 : 0;
	if (json)
		print_json(&d, counts, started);
	else
		fprintf(d.out, "imsd doctor: %zu ok, %zu warning%s, %zu failure%s%s\n",
		    counts[DOC_OK], counts[DOC_WARN], counts[DOC_WARN] == 1 ? "" : "s",
		    counts[DOC_FAIL], counts[DOC_FAIL] == 1 ? "" : "s",
		    counts[DOC_FAIL] ? ": fix the lines marked fail first" : "");
	if (d.c != NULL)
		cfg_unref(d.c);
	free(d.lines);
	return r;
}
