/* senderlogins_test — sender_login_maps: parsing, the address-then-domain lookup. */
#include <string.h>

#include "policy/senderlogins.h"
#include "t.h"

static const char map[] =
    "# comment\n"
    "alice@Example.com   alice\n"
    "@example.org        bob, carol\n"
    "sales@example.org   dave\n"
    "shared@example.com  alice,bob  eve\n";

TEST(an_address_entry_wins_over_its_domain_and_logins_are_exact)
{
	char err[256];
	struct senderlogins *m = senderlogins_parse("map", map, strlen(map), err, sizeof(err));

	CHECK(m != NULL);
	CHECK(senderlogins_count(m) == 4);
	CHECK(senderlogins_owns(m, "alice", "alice@example.com"));
	CHECK(senderlogins_owns(m, "alice", "ALICE@EXAMPLE.COM"));
	CHECK(!senderlogins_owns(m, "Alice", "alice@example.com"));
	CHECK(!senderlogins_owns(m, "bob", "alice@example.com"));
	CHECK(senderlogins_owns(m, "bob", "anyone@example.org"));
	CHECK(senderlogins_owns(m, "carol", "x@EXAMPLE.org"));
	CHECK(!senderlogins_owns(m, "bob", "sales@example.org"));	/* its own entry */
	CHECK(senderlogins_owns(m, "dave", "sales@example.org"));
	CHECK(senderlogins_owns(m, "eve", "shared@example.com"));
	CHECK(!senderlogins_owns(m, "alice", "other@example.com"));	/* no entry at all */
	CHECK(!senderlogins_owns(m, "alice", "not-an-address"));
	CHECK(senderlogins_owns(m, "nobody", ""));			/* the null sender */
	CHECK(!senderlogins_owns(m, "", "alice@example.com"));
	senderlogins_free(m);
}

TEST(bad_lines_name_the_file_and_line)
{
	char err[256];
	static const char *bad[][2] = {
		{ "a@b.example x\nnot-an-address y\n", "map:2: \"not-an-address\" is not an address" },
		{ "a@b.example\n", "map:1: a@b.example names no login" },
		{ "a@b@c x\n", "map:1: \"a@b@c\" is not an address" },
		{ "a@b.example x\nA@B.example y\n", "map: a@b.example is listed twice" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		CHECK(senderlogins_parse("map", bad[i][0], strlen(bad[i][0]), err, sizeof(err)) == NULL);
		CHECK(strncmp(err, bad[i][1], strlen(bad[i][1])) == 0);
	}
}

int
main(void)
{
	RUN(an_address_entry_wins_over_its_domain_and_logins_are_exact);
	RUN(bad_lines_name_the_file_and_line);
	T_EXIT();
}
