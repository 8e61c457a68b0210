/* clients_test — per-client connection counts, the IPv6 /64 key, AUTH failure buckets. */
#include <sys/socket.h>

#include "policy/clients.h"
#include "t.h"

static struct netaddr
A(const char *s)
{
	struct netaddr a;

	netaddr_parse(s, &a);
	return a;
}

TEST(ipv4_counts_each_address)
{
	struct clients *t = clients_new();
	struct netaddr a = A("192.0.2.1"), b = A("192.0.2.2");

	CHECK(clients_conns(t, &a) == 0);
	CHECK(clients_conn_add(t, &a, 1) == 0);
	CHECK(clients_conn_add(t, &a, 1) == 0);
	CHECK(clients_conn_add(t, &b, 1) == 0);
	CHECK(clients_conns(t, &a) == 2);
	CHECK(clients_conns(t, &b) == 1);
	clients_conn_add(t, &a, -1);
	clients_conn_add(t, &a, -1);
	clients_conn_add(t, &b, -1);
	CHECK(clients_conns(t, &a) == 0);
	CHECK(clients_count(t) == 0);	/* idle entries are gone at once */
	clients_free(t);
}

TEST(ipv6_counts_the_slash64)
{
	struct clients *t = clients_new();
	struct netaddr a = A("2001:db8:1:2::1"), b = A("2001:db8:1:2:ffff:ffff:ffff:ffff"),
	    other = A("2001:db8:1:3::1");

	clients_conn_add(t, &a, 1);
	clients_conn_add(t, &b, 1);
	CHECK(clients_conns(t, &a) == 2);
	CHECK(clients_conns(t, &b) == 2);
	CHECK(clients_conns(t, &other) == 0);
	CHECK(clients_count(t) == 1);
	clients_free(t);
}

TEST(auth_failures_lock_then_leak)
{
	struct clients *t = clients_new();
	struct netaddr a = A("198.51.100.7"), b = A("198.51.100.8");
	time_t now = 1000000;

	for (int i = 0; i < CLIENTS_AUTH_BURST; i++) {
		CHECK(clients_auth_allowed(t, &a, now));
		clients_auth_failed(t, &a, now);
	}
	CHECK(!clients_auth_allowed(t, &a, now));
	CHECK(!clients_auth_allowed(t, &a, now + CLIENTS_AUTH_LEAK - 1));
	CHECK(clients_auth_allowed(t, &b, now));	/* another client is not affected */
	/* one failure forgotten per CLIENTS_AUTH_LEAK seconds: one more try */
	CHECK(clients_auth_allowed(t, &a, now + CLIENTS_AUTH_LEAK));
	clients_auth_failed(t, &a, now + CLIENTS_AUTH_LEAK);
	CHECK(!clients_auth_allowed(t, &a, now + CLIENTS_AUTH_LEAK + 1));
	/* and all of it after long enough; then the entry can be dropped */
	CHECK(clients_auth_allowed(t, &a, now + 100 * CLIENTS_AUTH_LEAK));
	CHECK(clients_expire(t, now + 100 * CLIENTS_AUTH_LEAK) == 1);
	CHECK(clients_count(t) == 0);
	clients_free(t);
}

TEST(auth_bucket_outlives_connections)
{
	struct clients *t = clients_new();
	struct netaddr a = A("2001:db8::5");
	time_t now = 5000;

	clients_conn_add(t, &a, 1);
	for (int i = 0; i < CLIENTS_AUTH_BURST; i++)
		clients_auth_failed(t, &a, now);
	clients_conn_add(t, &a, -1);
	CHECK(clients_count(t) == 1);	/* the failures are remembered across sessions */
	CHECK(!clients_auth_allowed(t, &a, now + 1));
	CHECK(clients_expire(t, now + 1) == 0);
	clients_free(t);
}

TEST(a_good_attempt_is_refunded)
{
	struct clients *t = clients_new();
	struct netaddr a = A("192.0.2.9");

	for (int i = 0; i < CLIENTS_AUTH_BURST * 3; i++) {
		CHECK(clients_auth_allowed(t, &a, 100));
		clients_auth_failed(t, &a, 100);	/* counted when the check starts */
		clients_auth_refund(t, &a);		/* the password was right */
	}
	CHECK(clients_count(t) == 0);
	clients_free(t);
}

TEST(refused_recipients_slow_then_cut_off_a_client_across_sessions_and_leak)
{
	struct clients *t = clients_new();
	struct netaddr a = A("2001:db8:7:7::1"), same64 = A("2001:db8:7:7::99"),
	    b = A("2001:db8:7:8::1");
	time_t now = 2000000;
	int i;

	/* sessions come and go; the count is the client's (its /64) */
	for (i = 1; i <= CLIENTS_RCPT_SOFT; i++) {
		clients_conn_add(t, i % 2 ? &a : &same64, 1);
		CHECK(clients_rcpt_refused(t, i % 2 ? &a : &same64, now) == CLIENTS_RCPT_GO);
		clients_conn_add(t, i % 2 ? &a : &same64, -1);
	}
	for (; i <= CLIENTS_RCPT_HARD; i++)
		CHECK(clients_rcpt_refused(t, &a, now) == CLIENTS_RCPT_SLOW);
	CHECK(clients_rcpt_refused(t, &same64, now) == CLIENTS_RCPT_CUT);
	CHECK(clients_rcpt_refused(t, &a, now + 1) == CLIENTS_RCPT_CUT);
	CHECK(clients_rcpt_refused(t, &b, now) == CLIENTS_RCPT_GO);	/* another /64 */
	CHECK(clients_count(t) == 2);		/* remembered without a session */
	/* forgotten one per CLIENTS_RCPT_LEAK seconds */
	CHECK(clients_rcpt_refused(t, &a, now + 3 * CLIENTS_RCPT_LEAK) == CLIENTS_RCPT_SLOW);
	CHECK(clients_expire(t, now + 1000 * CLIENTS_RCPT_LEAK) == 2);
	CHECK(clients_count(t) == 0);
	clients_free(t);
}

int
main(void)
{
	RUN(ipv4_counts_each_address);
	RUN(ipv6_counts_the_slash64);
	RUN(auth_failures_lock_then_leak);
	RUN(auth_bucket_outlives_connections);
	RUN(a_good_attempt_is_refunded);
	RUN(refused_recipients_slow_then_cut_off_a_client_across_sessions_and_leak);
	T_EXIT();
}
