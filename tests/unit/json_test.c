/* json_test — JSON string escaping of hostile text. */
#include <string.h>

#include "t.h"
#include "util/json.h"

static const char *
esc(const char *s, size_t len)
{
	static char buf[1024];
	json_escape(s, len, buf, sizeof(buf));
	return buf;
}

#define E(s) esc((s), sizeof(s) - 1)

TEST(plain_text_is_kept_and_quoted)
{
	CHECK_STR(E("alice@example.org"), "\"alice@example.org\"");
	CHECK_STR(E(""), "\"\"");
}

TEST(quotes_backslashes_and_controls_are_escaped)
{
	CHECK_STR(E("a\"b\\c"), "\"a\\\"b\\\\c\"");
	CHECK_STR(E("\r\n\t\b\f"), "\"\\r\\n\\t\\b\\f\"");
	CHECK_STR(E("x\x01y\x1f\x7f"), "\"x\\u0001y\\u001f\\u007f\"");
	CHECK_STR(E("nul\0after"), "\"nul\\u0000after\"");
	CHECK_STR(E("</script>"), "\"</script>\"");
}

TEST(valid_utf8_is_kept_invalid_bytes_become_latin1_escapes)
{
	CHECK_STR(E("j\xc3\xbcrgen"), "\"j\xc3\xbcrgen\"");			/* ü */
	CHECK_STR(E("\xf0\x9f\x93\xa7"), "\"\xf0\x9f\x93\xa7\"");		/* U+1F4E7 */
	CHECK_STR(E("\xff\xfe"), "\"\\u00ff\\u00fe\"");
	CHECK_STR(E("\xc0\xaf"), "\"\\u00c0\\u00af\"");			/* overlong '/' */
	CHECK_STR(E("\xed\xa0\x80"), "\"\\u00ed\\u00a0\\u0080\"");		/* surrogate */
	CHECK_STR(E("\xc3"), "\"\\u00c3\"");					/* truncated */
	CHECK_STR(E("\xf4\x90\x80\x80"), "\"\\u00f4\\u0090\\u0080\\u0080\"");	/* > U+10FFFF */
	CHECK_STR(E("\xe2\x80\xa8"), "\"\\u2028\"");
}

TEST(length_is_reported_like_snprintf)
{
	char small[8];
	size_t n = json_escape("abcdefghij", 10, small, sizeof(small));

	CHECK(n == 12);
	CHECK_STR(small, "\"abcdef");
	CHECK(json_escape("\n", 1, NULL, 0) == 4);
}

int
main(void)
{
	RUN(plain_text_is_kept_and_quoted);
	RUN(quotes_backslashes_and_controls_are_escaped);
	RUN(valid_utf8_is_kept_invalid_bytes_become_latin1_escapes);
	RUN(length_is_reported_like_snprintf);
	T_EXIT();
}
