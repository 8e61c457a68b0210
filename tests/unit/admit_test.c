/* Unit tests for src/policy/admit.c: max_connections, max_connections_per_ip and
 * max_session_memory, as a new connection meets them. */
#include "policy/admit.h"
#include "t.h"

static struct conf conf;

static enum admit_refusal
judge(unsigned sessions, unsigned from_client, size_t used, size_t mine,
    struct admit_verdict *v)
{
	struct admit_counts n = { sessions, from_client, used, mine };

	return admit_decide(&conf, &n, v);
}

TEST(under_every_limit_the_connection_is_served)
{
	struct admit_verdict v;

	CHECK(judge(1, 0, 0, 1000, &v) == ADMIT_OK);
	CHECK(v.reply == NULL && v.reason == NULL);
	CHECK(judge(10, 2, 0, 1000, &v) == ADMIT_OK);	/* exactly max_connections */
}

TEST(one_over_max_connections_is_refused)
{
	struct admit_verdict v;

	CHECK(judge(11, 0, 0, 1000, &v) == ADMIT_CONNECTION_LIMIT);
	CHECK_STR(v.reason, "connection-limit");
	CHECK_STR(v.reply, "Too many connections; try again later");
}

TEST(the_per_ip_limit_counts_the_sessions_already_open_from_the_client)
{
	struct admit_verdict v;

	CHECK(judge(5, 2, 0, 1000, &v) == ADMIT_OK);		/* this is the third */
	CHECK(judge(5, 3, 0, 1000, &v) == ADMIT_CLIENT_LIMIT);	/* a fourth */
	CHECK_STR(v.reason, "client-connection-limit");
	CHECK_STR(v.reply, "Too many connections from your address; try again later");
}

TEST(memory_counts_the_others_and_this_session)
{
	struct admit_verdict v;

	CHECK(judge(2, 0, 1 << 20, 0, &v) == ADMIT_OK);		/* exactly the limit */
	CHECK(judge(2, 0, (1 << 20) - 100, 101, &v) == ADMIT_MEMORY_LIMIT);
	CHECK_STR(v.reason, "session-memory-limit");
	CHECK_STR(v.reply, "Too much memory in use by other sessions; try again later");
}

TEST(the_server_wide_limit_is_judged_first)
{
	struct admit_verdict v;

	CHECK(judge(11, 3, 1 << 21, 1, &v) == ADMIT_CONNECTION_LIMIT);
	CHECK(judge(10, 3, 1 << 21, 1, &v) == ADMIT_CLIENT_LIMIT);
}

int
main(void)
{
	char err[300];
	const char *text = "max_connections = 10\nmax_connections_per_ip = 3\n"
	    "max_session_memory = 1m\n";

	if (conf_parse("test", text, strlen(text), "mx.example", &conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	RUN(under_every_limit_the_connection_is_served);
	RUN(one_over_max_connections_is_refused);
	RUN(the_per_ip_limit_counts_the_sessions_already_open_from_the_client);
	RUN(memory_counts_the_others_and_this_session);
	RUN(the_server_wide_limit_is_judged_first);
	conf_free(&conf);
	T_EXIT();
}
