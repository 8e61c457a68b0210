/* Unit tests for src/policy/transport.c (transport_map). */
#include <stdlib.h>

#include "t.h"
#include "policy/transport.h"

static char err[512];

static struct transport_map *
P(const char *text)
{
	err[0] = '\0';
	return transport_map_parse("tmap", text, strlen(text), err, sizeof(err));
}

static int
fails_with(const char *text, const char *want)
{
	struct transport_map *m = P(text);

	if (m != NULL) {
		transport_map_free(m);
		fprintf(stderr, "  unexpectedly parsed: %s\n", text);
		return 0;
	}
	if (strcmp(err, want) != 0) {
		fprintf(stderr, "  got  \"%s\"\n  want \"%s\"\n", err, want);
		return 0;
	}
	return 1;
}

TEST(entries_map_domains_to_transports)
{
	struct transport_map *m = P("# DOMAIN TRANSPORT\n"
	    "Example.ORG.   lmtp:unix:/run/dovecot/lmtp\n"
	    "\n"
	    "lists.example.org\tlmtp:inet:[2001:db8::25]:24   # the list server\r\n"
	    "legacy.example.org maildir\n");
	const struct conf_transport *t;

	CHECK(m != NULL);
	if (m == NULL)
		return;
	CHECK(transport_map_count(m) == 3);
	CHECK((t = transport_map_lookup(m, "example.org")) != NULL);
	CHECK(t && t->kind == TRANSPORT_LMTP_UNIX && strcmp(t->path, "/run/dovecot/lmtp") == 0);
	CHECK((t = transport_map_lookup(m, "lists.example.org")) != NULL);
	CHECK(t && t->kind == TRANSPORT_LMTP_INET && t->port == 24);
	CHECK(t && strcmp(t->host, "2001:db8::25") == 0);
	CHECK((t = transport_map_lookup(m, "legacy.example.org")) != NULL);
	CHECK(t && t->kind == TRANSPORT_MAILDIR);
	CHECK(transport_map_lookup(m, "other.example.org") == NULL);
	CHECK(transport_map_lookup(m, "Example.ORG") == NULL);	/* callers pass lower case */
	CHECK_STR(transport_map_domain(m, 0), "example.org");
	CHECK(transport_map_line(m, 0) == 2 && transport_map_line(m, 1) == 4);
	transport_map_free(m);
}

TEST(u_labels_are_taken_in_their_a_label_form)
{
	struct transport_map *m = P("B\xc3\xbc" "cher.example lmtp:unix:/run/l\n");

	CHECK(m != NULL);
	CHECK(m && transport_map_lookup(m, "xn--bcher-kva.example") != NULL);
	transport_map_free(m);
}

TEST(an_empty_map_is_fine)
{
	struct transport_map *m = P("# nothing yet\n\n");

	CHECK(m != NULL && transport_map_count(m) == 0);
	transport_map_free(m);
	CHECK(transport_map_lookup(NULL, "example.org") == NULL);
}

TEST(errors_name_the_file_and_line)
{
	CHECK(fails_with("example.org\n", "tmap:1: \"example.org\" is not `DOMAIN TRANSPORT`"));
	CHECK(fails_with("\nexample.org maildir extra\n",
	    "tmap:2: \"example.org maildir extra\" is not `DOMAIN TRANSPORT`"));
	CHECK(fails_with("example.org smtp:[mx]:25\n",
	    "tmap:1: \"smtp:[mx]:25\" is not maildir, lmtp:unix:PATH or lmtp:inet:HOST:PORT"));
	CHECK(fails_with("exa_mple!.org maildir\n", "tmap:1: \"exa_mple!.org\" is not a domain name"));
	CHECK(fails_with("alice@example.org maildir\n",
	    "tmap:1: \"alice@example.org\" is not a domain name"));
	CHECK(fails_with(".example.org maildir\n", "tmap:1: \".example.org\" is not a domain name"));
	CHECK(fails_with("localhost maildir\n", "tmap:1: \"localhost\" is not a domain name"));
	CHECK(fails_with("a.example maildir\nA.example. lmtp:unix:/x\n",
	    "tmap:2: a.example is listed twice (first on line 1)"));
	CHECK(fails_with("a.example lmtp:unix:\n", "tmap:1: the socket path is missing"));
}

TEST(a_nul_byte_is_an_error)
{
	struct transport_map *m = transport_map_parse("tmap", "a.example maildir\n\0x", 20, err,
	    sizeof(err));

	CHECK(m == NULL);
	CHECK(strncmp(err, "tmap:2: ", 8) == 0);
}

TEST(an_unreadable_file_says_so)
{
	struct transport_map *m = transport_map_load("/nonexistent/imsd-transport", err,
	    sizeof(err));

	CHECK(m == NULL);
	CHECK(strstr(err, "/nonexistent/imsd-transport") != NULL);
}

int
main(void)
{
	RUN(entries_map_domains_to_transports);
	RUN(u_labels_are_taken_in_their_a_label_form);
	RUN(an_empty_map_is_fine);
	RUN(errors_name_the_file_and_line);
	RUN(a_nul_byte_is_an_error);
	RUN(an_unreadable_file_says_so);
	T_EXIT();
}
