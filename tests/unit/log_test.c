/* log_test — log values cannot fake a field or a line. */
#include <string.h>

#include "util/log.h"
#include "t.h"

static const char *
V(const char *in)
{
	static char out[LOG_VALUE_MAX];

	return log_value(out, sizeof(out), in, strlen(in));
}

TEST(plain_values_stay_bare)
{
	CHECK_STR(V("alice@example.org"), "alice@example.org");
	CHECK_STR(V("4.7.0"), "4.7.0");
	CHECK_STR(V("<a@b.c>"), "<a@b.c>");
}

TEST(space_equals_quote_and_backslash_force_quotes)
{
	CHECK_STR(V("two words"), "\"two words\"");
	CHECK_STR(V("a=b"), "\"a=b\"");
	CHECK_STR(V("say \"hi\""), "\"say \\\"hi\\\"\"");
	CHECK_STR(V("back\\slash"), "\"back\\\\slash\"");
	CHECK_STR(V(""), "\"\"");
}

TEST(control_and_8bit_bytes_are_escaped)
{
	CHECK_STR(V("line1\nline2"), "\"line1\\x0aline2\"");
	CHECK_STR(V("cr\rx"), "\"cr\\x0dx\"");
	CHECK_STR(V("j\xc3\xb6ran"), "\"j\\xc3\\xb6ran\"");
}

TEST(forged_sender_stays_one_value)
{
	char out[LOG_VALUE_MAX];
	const char *forged = "\"x> nrcpt=1 tls=yes auth=admin event=received from=<y\"@b.c";

	log_addr(out, sizeof(out), forged);
	CHECK_STR(out, "\"<\\\"x> nrcpt=1 tls=yes auth=admin event=received from=<y\\\"@b.c>\"");
}

TEST(long_values_are_cut_inside_the_quotes)
{
	char out[32], in[100];

	memset(in, 'a', sizeof(in));
	log_value(out, sizeof(out), in, sizeof(in));
	CHECK(strlen(out) < sizeof(out));
	CHECK(out[0] == '"');
	CHECK(strcmp(out + strlen(out) - 4, "...\"") == 0);
	in[50] = '\n';
	log_value(out, sizeof(out), in, sizeof(in));
	CHECK(strchr(out, '\n') == NULL);
}

int
main(void)
{
	RUN(plain_values_stay_bare);
	RUN(space_equals_quote_and_backslash_force_quotes);
	RUN(control_and_8bit_bytes_are_escaped);
	RUN(forged_sender_stays_one_value);
	RUN(long_values_are_cut_inside_the_quotes);
	T_EXIT();
}
