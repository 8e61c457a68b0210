/* Unit tests for src/policy/rcptcache.c. */
#include <stdlib.h>

#include "t.h"
#include "policy/rcptcache.h"

static struct rcptcache c;

TEST(a_verdict_is_believed_for_its_lifetime_only)
{
	const char *reply;

	rcptcache_init(&c);
	CHECK(rcptcache_get(&c, "a@example.org", 1000, &reply) == RCPTC_UNKNOWN_ENTRY);
	rcptcache_put(&c, "a@example.org", RCPTC_EXISTS, "", 1000);
	rcptcache_put(&c, "n@example.org", RCPTC_NO_SUCH_USER, "550 5.1.1 no", 1000);
	CHECK(rcptcache_get(&c, "a@example.org", 1000 + RCPTC_POS_TTL - 1, &reply) == RCPTC_EXISTS);
	CHECK(rcptcache_get(&c, "a@example.org", 1000 + RCPTC_POS_TTL, &reply) ==
	    RCPTC_UNKNOWN_ENTRY);
	CHECK(rcptcache_get(&c, "n@example.org", 1000 + RCPTC_NEG_TTL - 1, &reply) ==
	    RCPTC_NO_SUCH_USER);
	CHECK_STR(reply, "550 5.1.1 no");
	CHECK(rcptcache_get(&c, "n@example.org", 1000 + RCPTC_NEG_TTL, &reply) ==
	    RCPTC_UNKNOWN_ENTRY);
	CHECK(RCPTC_NEG_TTL < RCPTC_POS_TTL);
}

TEST(only_definite_answers_are_kept_and_a_new_one_replaces_the_old)
{
	const char *reply;

	rcptcache_init(&c);
	rcptcache_put(&c, "a@example.org", RCPTC_UNKNOWN_ENTRY, "", 10);
	rcptcache_put(&c, "a@example.org", 99, "", 10);
	CHECK(c.n == 0);
	rcptcache_put(&c, "a@example.org", RCPTC_NO_SUCH_USER, "550", 10);
	rcptcache_put(&c, "a@example.org", RCPTC_EXISTS, "", 20);
	CHECK(c.n == 1);
	CHECK(rcptcache_get(&c, "a@example.org", 21, &reply) == RCPTC_EXISTS);
}

TEST(a_full_cache_gives_up_the_entry_that_expires_first)
{
	char a[64];
	const char *reply;

	rcptcache_init(&c);
	for (int i = 0; i < RCPTC_SLOTS; i++) {
		snprintf(a, sizeof(a), "u%d@example.org", i);
		rcptcache_put(&c, a, RCPTC_EXISTS, "", 1000 + i);
	}
	CHECK(c.n == RCPTC_SLOTS);
	rcptcache_put(&c, "new@example.org", RCPTC_EXISTS, "", 5000);
	CHECK(c.n == RCPTC_SLOTS);
	CHECK(rcptcache_get(&c, "new@example.org", 5001, &reply) == RCPTC_EXISTS);
	CHECK(rcptcache_get(&c, "u0@example.org", 1001, &reply) == RCPTC_UNKNOWN_ENTRY);
	CHECK(rcptcache_get(&c, "u1@example.org", 1002, &reply) == RCPTC_EXISTS);
}

TEST(an_address_too_long_is_not_cached)
{
	char a[RCPTC_ADDR_MAX + 10];

	rcptcache_init(&c);
	memset(a, 'a', sizeof(a) - 1);
	a[sizeof(a) - 1] = '\0';
	rcptcache_put(&c, a, RCPTC_EXISTS, "", 1);
	CHECK(c.n == 0);
}

int
main(void)
{
	RUN(a_verdict_is_believed_for_its_lifetime_only);
	RUN(only_definite_answers_are_kept_and_a_new_one_replaces_the_old);
	RUN(a_full_cache_gives_up_the_entry_that_expires_first);
	RUN(an_address_too_long_is_not_cached);
	T_EXIT();
}
