/*
 * aliases_test — the aliases(5) parser: every kind of value, continuation lines, quotes,
 * comments, and each error with its file:line.
 */
#include <stdlib.h>
#include <string.h>

#include "policy/aliases.h"
#include "t.h"

static struct aliases *
P(const char *text, char *err)
{
	return aliases_parse("aliases", text, strlen(text), err, 512);
}

TEST(debian_default_file_parses_to_root)
{
	char err[512] = "";
	struct aliases *a = P("# /etc/aliases\n"
	    "mailer-daemon: postmaster\npostmaster: root\nnobody: root\nhostmaster: root\n"
	    "usenet: root\nnews: root\nwebmaster: root\nwww: root\nftp: root\nabuse: root\n"
	    "noc: root\nsecurity: root\nroot: admin@Example.ORG\n", err);
	CHECK(a != NULL);
	CHECK_STR(err, "");
	CHECK(aliases_count(a) == 13);
	const struct alias_entry *e = aliases_lookup(a, "MAILER-DAEMON");
	CHECK(e != NULL && e->nvalues == 1 && e->values[0].kind == AT_LOCAL);
	CHECK(e != NULL && strcmp(e->values[0].text, "postmaster") == 0);
	e = aliases_lookup(a, "root");
	CHECK(e != NULL && e->values[0].kind == AT_ADDRESS);
	CHECK(e != NULL && strcmp(e->values[0].text, "admin@example.org") == 0);
	CHECK(e != NULL && e->line == 14);
	CHECK(aliases_lookup(a, "alice") == NULL);
	aliases_free(a);
}

TEST(every_kind_of_value)
{
	char err[512] = "";
	struct aliases *a = P("team: alice, Bob carol@Dest.Example,\\root\n"
	    "archive: /var/mail/archive\n"
	    "tickets: \"|/usr/bin/ticket --queue support, urgent\"\n"
	    "pipe: |/usr/bin/procmail -a x, dave\n"
	    "list: :include:/etc/mail/list\n"
	    "drop: /dev/null\n", err);
	CHECK(a != NULL);
	CHECK_STR(err, "");
	const struct alias_entry *e = aliases_lookup(a, "team");
	CHECK(e != NULL && e->nvalues == 4);
	if (e != NULL && e->nvalues == 4) {
		CHECK(e->values[0].kind == AT_LOCAL && strcmp(e->values[0].text, "alice") == 0);
		CHECK(e->values[1].kind == AT_LOCAL && strcmp(e->values[1].text, "bob") == 0);
		CHECK(e->values[2].kind == AT_ADDRESS &&
		    strcmp(e->values[2].text, "carol@dest.example") == 0);
		CHECK(e->values[3].kind == AT_USER && strcmp(e->values[3].text, "root") == 0);
	}
	e = aliases_lookup(a, "archive");
	CHECK(e != NULL && e->values[0].kind == AT_FILE);
	e = aliases_lookup(a, "tickets");
	CHECK(e != NULL && e->nvalues == 1 && e->values[0].kind == AT_COMMAND &&
	    strcmp(e->values[0].text, "/usr/bin/ticket --queue support, urgent") == 0);
	e = aliases_lookup(a, "pipe");
	CHECK(e != NULL && e->nvalues == 2 && e->values[0].kind == AT_COMMAND &&
	    strcmp(e->values[0].text, "/usr/bin/procmail -a x") == 0);
	e = aliases_lookup(a, "list");
	CHECK(e != NULL && e->values[0].kind == AT_INCLUDE &&
	    strcmp(e->values[0].text, "/etc/mail/list") == 0);
	e = aliases_lookup(a, "drop");
	CHECK(e != NULL && e->values[0].kind == AT_DEVNULL);
	aliases_free(a);
}

TEST(continuation_lines_comments_and_crlf)
{
	char err[512] = "";
	struct aliases *a = P("staff: alice,\r\n  bob,\r\n# a comment inside\r\n\tcarol\r\n"
	    "\r\n\"Quoted.Name\": root\r\n", err);
	CHECK(a != NULL);
	CHECK_STR(err, "");
	const struct alias_entry *e = aliases_lookup(a, "staff");
	CHECK(e != NULL && e->nvalues == 3 && e->line == 1);
	CHECK(aliases_lookup(a, "quoted.name") != NULL);
	aliases_free(a);
}

TEST(errors_name_the_file_and_line)
{
	static const struct { const char *text, *want; } cases[] = {
		{ "root admin\n", "aliases:1: \"root\": no ':' after the name" },
		{ "ok: a\nroot:\n", "aliases:2: root: no values after the colon" },
		{ "a: b\n\nx: \"|cmd\n", "aliases:3: x: a quote that is not closed" },
		{ "x: |\n", "aliases:1: x: an empty command after '|'" },
		{ "x: :include:etc/list\n", "aliases:1: x: \":include:etc/list\": an :include: file needs "
		  "an absolute path" },
		{ "x: a@b@c\n", "aliases:1: x: \"a@b@c\" is not an address (local@domain)" },
		{ "a@b: c\n", "aliases:1: \"a@b\" is not a name for an alias" },
		{ "root: a\nfoo: b\nROOT: c\n", "aliases:3: root is listed twice (also at line 1)" },
		{ "  bob\n", "aliases:1: a line starting with a blank continues an entry, but none" },
		{ "x: a\ny: b\0c\n", "aliases:2: a NUL byte in the line" },
		{ "x: /var/mail/\n", "aliases:1: x: \"/var/mail/\" is a directory name" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[512] = "";
		size_t len = strlen(cases[i].text);
		if (i == 9)
			len = 12;	/* with the NUL */
		struct aliases *a = aliases_parse("aliases", cases[i].text, len, err, sizeof(err));
		CHECK(a == NULL);
		if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0) {
			fprintf(stderr, "  case %zu: got \"%s\"\n", i, err);
			CHECK(0);
		}
		aliases_free(a);
	}
}

TEST(limits_are_errors_not_truncation)
{
	char err[512] = "";
	size_t n = ALIASES_VALUES_MAX + 1;
	char *t = malloc(n * 3 + 16), *p = t;
	p += sprintf(p, "x: ");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "a,");
	*p = '\0';
	struct aliases *a = P(t, err);
	CHECK(a == NULL);
	CHECK(strstr(err, "more than 10000 values") != NULL);
	free(t);
}

int
main(void)
{
	RUN(debian_default_file_parses_to_root);
	RUN(every_kind_of_value);
	RUN(continuation_lines_comments_and_crlf);
	RUN(errors_name_the_file_and_line);
	RUN(limits_are_errors_not_truncation);
	T_EXIT();
}
