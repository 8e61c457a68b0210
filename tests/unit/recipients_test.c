/* Unit tests for src/policy/recipients.c. */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "t.h"
#include "policy/recipients.h"

static char err[1024];

static struct recipients *P(const char *text)
{
	err[0] = '\0';
	return recipients_parse("r.txt", text, strlen(text), err, sizeof err);
}

/* 1 when text fails with exactly want. */
static int fails_with(const char *text, const char *want)
{
	struct recipients *r = P(text);

	if (r != NULL) {
		fprintf(stderr, "  unexpectedly parsed: %s\n", text);
		recipients_free(r);
		return 0;
	}
	if (strcmp(err, want) != 0) {
		fprintf(stderr, "  got  \"%s\"\n  want \"%s\"\n", err, want);
		return 0;
	}
	return 1;
}

static int known(const struct recipients *r, const char *a)
{
	char *const *t;
	size_t n;

	return recipients_lookup(r, a, &t, &n);
}

TEST(plain_addresses_are_known_and_others_are_not)
{
	struct recipients *r = P("alice@example.com\nbob@example.com\n");
	char *const *t = (char *const *)1;
	size_t n = 99;

	CHECK(r != NULL);
	CHECK(recipients_count(r) == 2);
	CHECK(recipients_lookup(r, "alice@example.com", &t, &n) == 1);
	CHECK(n == 0);
	CHECK(known(r, "bob@example.com") == 1);
	CHECK(known(r, "carol@example.com") == 0);
	CHECK(known(r, "alice@example.org") == 0);
	CHECK(known(r, "alice") == 0);
	CHECK(known(r, "") == 0);
	CHECK(recipients_lookup(r, "alice@example.com", NULL, NULL) == 1);
	recipients_free(r);
}

TEST(addresses_match_case_insensitively)
{
	struct recipients *r = P("Alice@Example.COM\n");

	CHECK(r != NULL);
	CHECK(known(r, "alice@example.com") == 1);
	CHECK(known(r, "ALICE@EXAMPLE.COM") == 1);
	recipients_free(r);
}

TEST(trailing_dot_of_domain_is_stripped)
{
	struct recipients *r = P("alice@example.com.\nx@y: z@w.\n");
	char *const *t;
	size_t n;

	CHECK(r != NULL);
	CHECK(known(r, "alice@example.com") == 1);
	CHECK(recipients_lookup(r, "x@y", &t, &n) == 1 && n == 1);
	if (n == 1)
		CHECK_STR(t[0], "z@w");
	recipients_free(r);
}

TEST(aliases_return_their_targets)
{
	struct recipients *r = P("sales@example.com: bob@example.com, carol@example.net dave@example.com\n"
	    "postmaster@example.com:root@example.com\n");
	char *const *t;
	size_t n;

	CHECK(r != NULL);
	CHECK(recipients_lookup(r, "sales@example.com", &t, &n) == 1);
	CHECK(n == 3);
	if (n == 3) {
		CHECK_STR(t[0], "bob@example.com");
		CHECK_STR(t[1], "carol@example.net");
		CHECK_STR(t[2], "dave@example.com");
	}
	CHECK(recipients_lookup(r, "postmaster@example.com", &t, &n) == 1 && n == 1);
	if (n == 1)
		CHECK_STR(t[0], "root@example.com");
	/* targets are not themselves known addresses unless listed */
	CHECK(known(r, "bob@example.com") == 0);
	recipients_free(r);
}

TEST(alias_targets_are_lowercased)
{
	struct recipients *r = P("Team@Example.com: Bob@Example.COM,CAROL@example.NET\n");
	char *const *t;
	size_t n;

	CHECK(r != NULL);
	CHECK(recipients_lookup(r, "team@example.com", &t, &n) == 1 && n == 2);
	if (n == 2) {
		CHECK_STR(t[0], "bob@example.com");
		CHECK_STR(t[1], "carol@example.net");
	}
	recipients_free(r);
}

TEST(comments_blank_lines_and_crlf_are_ignored)
{
	struct recipients *r = P("# the list\r\n\r\n   \n\talice@example.com   # Alice\r\n"
	    "a#b@example.com\nlist@example.com: x@example.com # y@example.com\n");
	char *const *t;
	size_t n;

	CHECK(r != NULL);
	CHECK(recipients_count(r) == 3);
	CHECK(known(r, "alice@example.com") == 1);
	CHECK(known(r, "a#b@example.com") == 1);
	CHECK(recipients_lookup(r, "list@example.com", &t, &n) == 1 && n == 1);
	recipients_free(r);
}

TEST(empty_text_knows_nobody)
{
	struct recipients *r = P("");

	CHECK(r != NULL);
	CHECK(recipients_count(r) == 0);
	CHECK(known(r, "a@b") == 0);
	recipients_free(r);
	CHECK(recipients_lookup(NULL, "a@b", NULL, NULL) == 0);
}

TEST(target_without_domain_is_an_error)
{
	CHECK(fails_with("\nlist@example.com: bob@example.com, carol\n",
	    "r.txt:2: target \"carol\" needs a domain"));
}

TEST(malformed_addresses_are_errors)
{
	CHECK(fails_with("alice\n", "r.txt:1: \"alice\" is not local@domain"));
	CHECK(fails_with("a@b@c\n", "r.txt:1: \"a@b@c\" is not local@domain"));
	CHECK(fails_with("@example.com\n", "r.txt:1: \"@example.com\" is not local@domain"));
	CHECK(fails_with("alice@\n", "r.txt:1: \"alice@\" is not local@domain"));
	CHECK(fails_with("alice@.\n", "r.txt:1: \"alice@.\" is not local@domain"));
	CHECK(fails_with("x@y: a@\n", "r.txt:1: target \"a@\" is not local@domain"));
	CHECK(P("alice bob@example.com\n") == NULL);
	CHECK(P("<alice@example.com>\n") == NULL);
	CHECK(P("al\xc3@example.com\n") == NULL);		/* malformed UTF-8 */
	CHECK(P("al\xc2\x85@example.com\n") == NULL);		/* C1 control */
	CHECK(P("x@y: a@b: c@d\n") == NULL);
}

TEST(utf8_addresses_are_kept_nfc_lower_case_with_a_label_domains)
{
	/* RFC 6531: listed as the user writes them, compared as RCPT compares */
	struct recipients *r = P("J\xc3\x96RAN@B\xc3\x9c" "CHER.example\n"
	    "list@example.com: Jo\xcc\x88ran@xn--bcher-kva.example\n");

	CHECK(r != NULL);
	if (r == NULL)
		return;
	CHECK(known(r, "j\xc3\xb6ran@xn--bcher-kva.example"));
	CHECK(known(r, "list@example.com"));
	CHECK(!known(r, "J\xc3\x96RAN@B\xc3\x9c" "CHER.example"));
	recipients_free(r);
	CHECK(P("a@\xcc\x88" "b.example\n") == NULL);	/* a label may not start with a mark */
}

TEST(alias_without_targets_is_an_error)
{
	CHECK(fails_with("list@example.com:\n", "r.txt:1: \"list@example.com\": no targets after ':'"));
	CHECK(fails_with("list@example.com: , ,\n", "r.txt:1: \"list@example.com\": no targets after ':'"));
}

TEST(duplicate_address_names_both_lines)
{
	CHECK(fails_with("alice@example.com\n# x\nALICE@example.com.: bob@example.com\n",
	    "r.txt:3: \"alice@example.com\" is listed twice (first on line 1)"));
}

TEST(nul_byte_is_an_error)
{
	static const char text[] = "a@b\nc\0d@e\n";
	struct recipients *r = recipients_parse("r.txt", text, sizeof text - 1, err, sizeof err);

	CHECK(r == NULL);
	CHECK_STR(err, "r.txt:2: NUL byte in line");
}

TEST(overlong_parts_are_errors)
{
	char text[400];

	snprintf(text, sizeof text, "%065d@example.com\n", 0);
	CHECK(P(text) == NULL);
	snprintf(text, sizeof text, "%064d@example.com\n", 0);
	{
		struct recipients *r = P(text);

		CHECK(r != NULL);
		recipients_free(r);
	}
}

TEST(hundred_thousand_entries_load_and_look_up_fast)
{
	size_t n = 100000, cap = n * 40 + 64, len = 0;
	char *text = malloc(cap), a[64];
	struct recipients *r;
	clock_t t0;
	int found = 0;

	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len, "user%zu@d%zu.example%s\n", i, i % 97,
		    i % 1000 == 0 ? ": other@example.com" : "");
	t0 = clock();
	r = recipients_parse("big", text, len, err, sizeof err);
	CHECK(r != NULL);
	CHECK(recipients_count(r) == n);
	for (size_t i = 0; i < n; i++) {
		snprintf(a, sizeof a, "user%zu@d%zu.example", i, i % 97);
		found += known(r, a);
		snprintf(a, sizeof a, "user%zu@d%zu.example", i, (i + 1) % 97);
		found -= known(r, a);
	}
	CHECK(found == (int)n);
	/* generous: the point is that it is not quadratic */
	CHECK((double)(clock() - t0) / CLOCKS_PER_SEC < 10.0);
	recipients_free(r);
	free(text);
}

TEST(load_reads_a_file_and_reports_unreadable_ones)
{
	char path[] = "/tmp/imsd_rcpt_test_XXXXXX", want[256];
	int fd = mkstemp(path);
	static const char text[] = "alice@example.com\nbad\n";
	struct recipients *r;

	CHECK(fd >= 0);
	CHECK(write(fd, text, 18) == 18);
	r = recipients_load(path, err, sizeof err);
	CHECK(r != NULL);
	CHECK(known(r, "alice@example.com") == 1);
	recipients_free(r);

	CHECK(write(fd, text + 18, 4) == 4);
	close(fd);
	CHECK(recipients_load(path, err, sizeof err) == NULL);
	snprintf(want, sizeof want, "%s:2: \"bad\" is not local@domain", path);
	CHECK_STR(err, want);
	unlink(path);

	CHECK(recipients_load("/nonexistent/recipients", err, sizeof err) == NULL);
	CHECK_STR(err, "/nonexistent/recipients: cannot read: No such file or directory");
}

/* ---- recipients_expand ---- */

static int
local_is_example(void *arg, const char *domain)
{
	return strcmp(domain, "example.com") == 0;
}

struct trace {
	char text[4096];
	int fail_at;		/* visit number that returns -1 (0 = none) */
	int n;
};

static int
record(void *arg, enum recipients_node node, const char *addr, char *const *targets,
    size_t nt, int depth)
{
	struct trace *t = arg;
	size_t len = strlen(t->text);

	if (len + 300 < sizeof(t->text))
		snprintf(t->text + len, sizeof(t->text) - len, "%s%d:%s:%s", len ? " " : "", depth,
		    node == RX_ALIAS ? "alias" : node == RX_MAILBOX ? "mailbox" : "relay", addr);
	return ++t->n == t->fail_at ? -1 : 0;
}

/* Expand addr through the recipients text (NULL: no file); the visits as text. */
static const char *
expand(const char *text, const char *addr, int fail_at, struct trace *t, const char **why)
{
	struct recipients *r = text ? recipients_parse("t", text, strlen(text), err,
	    sizeof(err)) : NULL;

	memset(t, 0, sizeof(*t));
	t->fail_at = fail_at;
	*why = NULL;
	if (recipients_expand(r, addr, local_is_example, NULL, record, t, why) < 0 &&
	    *why == NULL)
		*why = "(no reason)";
	recipients_free(r);
	return t->text;
}

TEST(expansion_walks_aliases_depth_first_as_rcpt_does)
{
	struct trace t;
	const char *why;

	CHECK_STR(expand(NULL, "a@example.com", 0, &t, &why), "0:mailbox:a@example.com");
	CHECK(why == NULL);
	CHECK_STR(expand("a@example.com\n", "a@example.com", 0, &t, &why),
	    "0:mailbox:a@example.com");
	CHECK_STR(expand("sales@example.com: a@example.com, x@remote.org, sales@example.com\n"
	    "a@example.com: b@example.com\n", "sales@example.com", 0, &t, &why),
	    "0:alias:sales@example.com 1:alias:a@example.com 2:mailbox:b@example.com "
	    "1:relay:x@remote.org 1:mailbox:sales@example.com");
	CHECK(why == NULL);
}

TEST(expansion_refusals_name_their_reason)
{
	static char big[64 * 1024];
	struct trace t;
	const char *why;
	size_t n;

	expand("l1@example.com: l2@example.com\nl2@example.com: l1@example.com\n",
	    "l1@example.com", 0, &t, &why);
	CHECK_STR(why, "alias nesting too deep");
	CHECK(t.n == RECIPIENTS_ALIAS_DEPTH_MAX + 1);
	n = (size_t)snprintf(big, sizeof(big), "many@example.com:");
	for (int i = 0; i < RECIPIENTS_EXPANSION_MAX + 1; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, " r%d@remote.org", i);
	snprintf(big + n, sizeof(big) - n, "\n");
	expand(big, "many@example.com", 0, &t, &why);
	CHECK_STR(why, "alias expands to too many addresses");
	CHECK(t.n == RECIPIENTS_EXPANSION_MAX + 1);	/* the alias and 1000 relays */
	expand("s@example.com: a@example.com\n", "s@example.com", 2, &t, &why);
	CHECK_STR(why, "out of memory");
}

int main(void)
{
	RUN(plain_addresses_are_known_and_others_are_not);
	RUN(addresses_match_case_insensitively);
	RUN(trailing_dot_of_domain_is_stripped);
	RUN(aliases_return_their_targets);
	RUN(alias_targets_are_lowercased);
	RUN(comments_blank_lines_and_crlf_are_ignored);
	RUN(empty_text_knows_nobody);
	RUN(target_without_domain_is_an_error);
	RUN(malformed_addresses_are_errors);
	RUN(utf8_addresses_are_kept_nfc_lower_case_with_a_label_domains);
	RUN(alias_without_targets_is_an_error);
	RUN(duplicate_address_names_both_lines);
	RUN(nul_byte_is_an_error);
	RUN(overlong_parts_are_errors);
	RUN(hundred_thousand_entries_load_and_look_up_fast);
	RUN(load_reads_a_file_and_reports_unreadable_ones);
	RUN(expansion_walks_aliases_depth_first_as_rcpt_does);
	RUN(expansion_refusals_name_their_reason);
	T_EXIT();
}
