/*
 * smtp_path_test — RFC 5321 §4.1.2 path and ESMTP parameter parsing.
 *
 * Every input is copied into a heap buffer of exactly its length (no NUL after it), so
 * AddressSanitizer catches any read past len.
 */
#include <stdlib.h>

#include "t.h"
#include "proto/smtp_path.h"

static struct smtp_path pth;
static const char *why;
static size_t restoff;		/* offset of *rest from the start of the input */
static char restbuf[512];	/* copy of what *rest points to, NUL-terminated */

static enum smtp_path_status
parse_n(const char *s, size_t n, int allow_null, int allow_postmaster)
{
	char *copy = malloc(n ? n : 1);
	const char *rest = NULL;
	enum smtp_path_status st;

	memcpy(copy, s, n);
	why = NULL;
	st = smtp_path_parse(copy, n, allow_null, allow_postmaster, &pth, &rest, &why);
	restoff = (size_t)(rest - copy);
	snprintf(restbuf, sizeof(restbuf), "%.*s", (int)(n - restoff), rest);
	free(copy);
	return st;
}

static enum smtp_path_status
parse(const char *s, int allow_null, int allow_postmaster)
{
	return parse_n(s, strlen(s), allow_null, allow_postmaster);
}

static char *
rep(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

/* A domain of exactly n octets: "a.a.a...." with labels of one letter (n odd) or "aa" end. */
static char *
domain_of(char *buf, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		buf[i] = (i % 2 == 0) ? 'a' : '.';
	if (n % 2 == 0)
		buf[n - 1] = 'b';	/* "a.a...ab" : still valid, ends in a letter */
	buf[n] = '\0';
	return buf;
}

TEST(plain_mailbox_is_split_into_local_and_domain)
{
	CHECK(parse("<user@example.com>", 0, 0) == SMTP_PATH_OK);
	CHECK_STR(pth.local, "user");
	CHECK_STR(pth.domain, "example.com");
	CHECK(!pth.is_null && !pth.is_postmaster && !pth.quoted && !pth.has_route &&
	    !pth.is_literal);
	CHECK(restoff == 18);
	CHECK_STR(why, "ok");
}

TEST(domain_case_is_kept)
{
	CHECK(parse("<User.Name+tag@Mail.Example.COM>", 0, 0) == SMTP_PATH_OK);
	CHECK_STR(pth.local, "User.Name+tag");
	CHECK_STR(pth.domain, "Mail.Example.COM");
}

TEST(dot_string_with_all_atext_specials_is_accepted)
{
	CHECK(parse("<!#$%&'*+-/=?^_`{|}~.x@h-1.e>", 0, 0) == SMTP_PATH_OK);
	CHECK_STR(pth.local, "!#$%&'*+-/=?^_`{|}~.x");
	CHECK_STR(pth.domain, "h-1.e");
}

TEST(null_path_accepted_when_allowed)
{
	CHECK(parse("<>", 1, 0) == SMTP_PATH_OK);
	CHECK(pth.is_null);
	CHECK_STR(pth.local, "");
	CHECK_STR(pth.domain, "");
	CHECK(restoff == 2);
}

TEST(null_path_refused_when_not_allowed)
{
	CHECK(parse("<>", 0, 1) == SMTP_PATH_NULL_NOT_ALLOWED);
	CHECK_STR(why, "null path not allowed");
	CHECK(!pth.is_null);
}

TEST(quoted_local_part_is_unquoted)
{
	CHECK(parse("<\"john smith\"@example.com>", 0, 0) == SMTP_PATH_OK);
	CHECK(pth.quoted);
	CHECK_STR(pth.local, "john smith");
	CHECK_STR(pth.domain, "example.com");
}

TEST(quoted_local_part_with_escaped_quote_is_unquoted)
{
	CHECK(parse("<\"a\\\"b\"@x>", 0, 0) == SMTP_PATH_OK);
	CHECK_STR(pth.local, "a\"b");
	CHECK(parse("<\"a\\\\b\"@x>", 0, 0) == SMTP_PATH_OK);
	CHECK_STR(pth.local, "a\\b");
	CHECK(parse("<\"\\a\"@x>", 0, 0) == SMTP_PATH_OK);	/* any quoted-pair */
	CHECK_STR(pth.local, "a");
}

TEST(quoted_local_part_may_contain_brackets_and_at)
{
	CHECK(parse("<\"a>b@c\"@x> SIZE=1", 0, 0) == SMTP_PATH_OK);
	CHECK_STR(pth.local, "a>b@c");
	CHECK_STR(restbuf, " SIZE=1");
}

TEST(bad_quoted_local_parts_are_syntax_errors)
{
	CHECK(parse("<\"abc@x>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK_STR(why, "unterminated quoted string");
	CHECK(parse("<\"a\\", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<\"a\tb\"@x>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<\"a\\\tb\"@x>", 0, 0) == SMTP_PATH_SYNTAX);	/* pair needs %d32-126 */
	CHECK(parse("<\"a\"b@x>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<\"\"@x>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK_STR(why, "empty local part");
}

TEST(empty_local_part_is_syntax_error)
{
	CHECK(parse("<@example.com>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK_STR(why, "empty local part");
}

TEST(bad_dot_strings_are_syntax_errors)
{
	CHECK(parse("<.a@x>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a.@x>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a..b@x>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a(b)@x>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@b@x>", 0, 0) == SMTP_PATH_SYNTAX);
}

TEST(bad_domains_are_syntax_errors)
{
	CHECK(parse("<a@x.>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK_STR(why, "trailing dot in domain");
	CHECK(parse("<a@.x>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@x..y>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@-x>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@x->", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@x-.y>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@x_y>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@x-y.z9>", 0, 0) == SMTP_PATH_OK);
	CHECK(parse("<a@localhost>", 0, 0) == SMTP_PATH_OK);
}

TEST(ipv4_literal_is_accepted_with_brackets_kept)
{
	CHECK(parse("<a@[192.0.2.1]>", 0, 0) == SMTP_PATH_OK);
	CHECK(pth.is_literal);
	CHECK_STR(pth.domain, "[192.0.2.1]");
	CHECK(parse("<a@[255.255.255.255]>", 0, 0) == SMTP_PATH_OK);
	CHECK(parse("<a@[0.0.0.0]>", 0, 0) == SMTP_PATH_OK);
}

TEST(invalid_ipv4_literals_are_refused)
{
	CHECK(parse("<a@[300.1.1.1]>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@[256.1.1.1]>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@[1.2.3]>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@[1.2.3.4.5]>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@[1234.1.1.1]>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@[1.2.3.]>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@[1.2.3.4>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@[]>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@[ 1.2.3.4]>", 0, 0) == SMTP_PATH_SYNTAX);
}

TEST(ipv6_literal_is_accepted)
{
	CHECK(parse("<a@[IPv6:::1]>", 0, 0) == SMTP_PATH_OK);
	CHECK(pth.is_literal);
	CHECK_STR(pth.domain, "[IPv6:::1]");
	CHECK(parse("<a@[IPv6:2001:db8::1]>", 0, 0) == SMTP_PATH_OK);
	CHECK(parse("<a@[ipv6:2001:DB8:0:0:0:0:0:1]>", 0, 0) == SMTP_PATH_OK);
	CHECK(parse("<a@[IPv6:::ffff:192.0.2.1]>", 0, 0) == SMTP_PATH_OK);
	CHECK(parse("<a@[IPv6:1:2:3:4:5:6:1.2.3.4]>", 0, 0) == SMTP_PATH_OK);
}

TEST(invalid_ipv6_literals_are_refused)
{
	CHECK(parse("<a@[IPv6:zz]>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@[IPv6:]>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@[IPv6:1:2:3:4:5:6:7:8:9]>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@[IPv6:1::2::3]>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@[IPv6:12345::1]>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@[IPv6:fe80::1%eth0]>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@[::1]>", 0, 0) == SMTP_PATH_SYNTAX);
	/* RFC 5321: "::" must stand for at least two groups */
	CHECK(parse("<a@[IPv6:1:2:3:4:5:6:7::]>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@[IPv6:1:2:3:4:5::1.2.3.4]>", 0, 0) == SMTP_PATH_SYNTAX);
	/* an over-long run of address characters stays within bounds */
	CHECK(parse("<a@[IPv6:1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa]>", 0, 0) ==
	    SMTP_PATH_SYNTAX);
}

TEST(general_address_literal_is_refused)
{
	CHECK(parse("<a@[x400:foo]>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK_STR(why, "unsupported address literal");
}

TEST(source_route_is_stripped_and_flagged)
{
	CHECK(parse("<@a.example,@b.example:user@c.example>", 0, 0) == SMTP_PATH_OK);
	CHECK(pth.has_route);
	CHECK_STR(pth.local, "user");
	CHECK_STR(pth.domain, "c.example");
	CHECK(parse("<@a:u@[10.0.0.1]>", 0, 0) == SMTP_PATH_OK);
	CHECK(pth.has_route && pth.is_literal);
}

TEST(malformed_source_routes_are_refused)
{
	CHECK(parse("<@a.example:>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<@a.example,b.example:u@c>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<@a.example;u@c>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<@:u@c>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<@a.,@b:u@c>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<@[1.2.3.4]:u@c>", 0, 0) == SMTP_PATH_SYNTAX);	/* At-domain is a Domain */
	CHECK(parse("<@a,:u@c>", 0, 0) == SMTP_PATH_SYNTAX);
}

TEST(bare_postmaster_accepted_only_when_allowed)
{
	CHECK(parse("<Postmaster>", 0, 1) == SMTP_PATH_OK);
	CHECK(pth.is_postmaster);
	CHECK_STR(pth.local, "Postmaster");
	CHECK_STR(pth.domain, "");
	CHECK(parse("<pOSTMASTER>", 0, 1) == SMTP_PATH_OK);
	CHECK(pth.is_postmaster);
	CHECK(parse("<postmaster>", 1, 0) == SMTP_PATH_SYNTAX);
	CHECK_STR(why, "missing '@'");
}

TEST(postmaster_with_domain_is_an_ordinary_mailbox)
{
	CHECK(parse("<postmaster@x>", 0, 0) == SMTP_PATH_OK);
	CHECK(!pth.is_postmaster);
	CHECK_STR(pth.local, "postmaster");
	CHECK(parse("<postmaster@x>", 0, 1) == SMTP_PATH_OK);
	CHECK(!pth.is_postmaster);
	CHECK(parse("<postmasters>", 0, 1) == SMTP_PATH_SYNTAX);
	CHECK(parse("<postmaste>", 0, 1) == SMTP_PATH_SYNTAX);
	CHECK(parse("<postmaster", 0, 1) == SMTP_PATH_SYNTAX);
	CHECK(parse("<@a:postmaster>", 0, 1) == SMTP_PATH_SYNTAX);
}

TEST(local_part_of_64_octets_is_accepted_65_refused)
{
	char l[80], in[200];

	snprintf(in, sizeof(in), "<%s@x>", rep(l, 'a', 64));
	CHECK(parse(in, 0, 0) == SMTP_PATH_OK);
	CHECK(strlen(pth.local) == 64);
	snprintf(in, sizeof(in), "<%s@x>", rep(l, 'a', 65));
	CHECK(parse(in, 0, 0) == SMTP_PATH_TOO_LONG);
	CHECK_STR(why, "local part too long");
}

TEST(quoted_local_part_limit_counts_quotes)
{
	char l[80], in[200];

	snprintf(in, sizeof(in), "<\"%s\"@x>", rep(l, ' ', 62));
	CHECK(parse(in, 0, 0) == SMTP_PATH_OK);
	CHECK(strlen(pth.local) == 62);
	snprintf(in, sizeof(in), "<\"%s\"@x>", rep(l, ' ', 63));
	CHECK(parse(in, 0, 0) == SMTP_PATH_TOO_LONG);
	/* a long unterminated quoted string does not overflow local[] */
	snprintf(in, sizeof(in), "<\"%s", rep(l, 'q', 70));
	CHECK(parse(in, 0, 0) == SMTP_PATH_SYNTAX);
}

TEST(domain_of_255_octets_is_within_its_limit_256_refused)
{
	char d[300], in[400];

	/* 255 is within the domain limit, so the path limit (256) is what trips */
	snprintf(in, sizeof(in), "<a@%s>", domain_of(d, 255));
	CHECK(parse(in, 0, 0) == SMTP_PATH_TOO_LONG);
	CHECK_STR(why, "path too long");
	snprintf(in, sizeof(in), "<a@%s>", domain_of(d, 256));
	CHECK(parse(in, 0, 0) == SMTP_PATH_TOO_LONG);
	CHECK_STR(why, "domain too long");
	/* the same holds for a domain in a source route */
	snprintf(in, sizeof(in), "<@%s:a@b>", domain_of(d, 256));
	CHECK(parse(in, 0, 0) == SMTP_PATH_TOO_LONG);
	CHECK_STR(why, "domain too long");
}

TEST(path_of_256_octets_is_accepted_257_refused)
{
	char d[300], in[400];

	/* "<" + "a" + "@" + domain + ">" = 256  =>  domain = 252 */
	snprintf(in, sizeof(in), "<a@%s>", domain_of(d, 252));
	CHECK(strlen(in) == 256);
	CHECK(parse(in, 0, 0) == SMTP_PATH_OK);
	CHECK(strlen(pth.domain) == 252);
	CHECK(restoff == 256);
	snprintf(in, sizeof(in), "<a@%s>", domain_of(d, 253));
	CHECK(strlen(in) == 257);
	CHECK(parse(in, 0, 0) == SMTP_PATH_TOO_LONG);
	CHECK_STR(why, "path too long");
}

TEST(path_limit_counts_the_source_route)
{
	char d[300], in[400];

	/* "<@" + 200 + ":" + "a@" + 50 + ">" = 256 */
	snprintf(in, sizeof(in), "<@%s:a@", domain_of(d, 200));
	snprintf(in + strlen(in), sizeof(in) - strlen(in), "%s>", domain_of(d, 50));
	CHECK(strlen(in) == 256);
	CHECK(parse(in, 0, 0) == SMTP_PATH_OK);
	snprintf(in, sizeof(in), "<@%s:a@", domain_of(d, 201));
	snprintf(in + strlen(in), sizeof(in) - strlen(in), "%s>", domain_of(d, 50));
	CHECK(parse(in, 0, 0) == SMTP_PATH_TOO_LONG);
}

TEST(utf8_local_part_and_domain_are_accepted_and_flagged)
{
	CHECK(parse("<j\xc3\xb6ran@example.com>", 0, 0) == SMTP_PATH_OK);
	CHECK_STR(pth.local, "j\xc3\xb6ran");
	CHECK_STR(pth.domain, "example.com");
	CHECK(pth.utf8 == 1);
	CHECK(parse("<a@b\xc3\xbc" "cher.example>", 0, 0) == SMTP_PATH_OK);
	CHECK_STR(pth.domain, "b\xc3\xbc" "cher.example");
	CHECK(pth.utf8 == 1);
	CHECK(parse("<\"a \xc3\xa4\"@x>", 0, 0) == SMTP_PATH_OK);	/* quoted-string */
	CHECK_STR(pth.local, "a \xc3\xa4");
	CHECK(pth.utf8 == 1);
	/* CJK (3 octets) and an emoji (4 octets) in the local part, a U-label of its own */
	CHECK(parse("<\xe7\x94\xa8\xe6\x88\xb7.\xf0\x9f\x98\x80@\xe4\xbe\x8b\xe5\xad\x90.\xe6\xb5\x8b\xe8\xaf\x95>",
	    0, 0) == SMTP_PATH_OK);
	CHECK(pth.utf8 == 1);
	CHECK(parse("<ascii@example.com>", 0, 0) == SMTP_PATH_OK);
	CHECK(pth.utf8 == 0);
	/* a route's U-labels are stripped with it and do not make the path UTF-8 */
	CHECK(parse("<@r\xc3\xa9.x:a@x>", 0, 0) == SMTP_PATH_OK);
	CHECK(pth.utf8 == 0 && pth.has_route);
}

TEST(utf8_is_formatted_without_quotes)
{
	char buf[SMTP_PATH_MAX + 1];

	CHECK(parse("<j\xc3\xb6ran@b\xc3\xbc" "cher.example>", 0, 0) == SMTP_PATH_OK);
	CHECK(smtp_path_format(&pth, buf, sizeof(buf)) > 0);
	CHECK_STR(buf, "<j\xc3\xb6ran@b\xc3\xbc" "cher.example>");
	CHECK(smtp_addr_requote("j\xc3\xb6 x@h", buf, sizeof(buf)) > 0);
	CHECK_STR(buf, "\"j\xc3\xb6 x\"@h");
}

TEST(malformed_utf8_is_refused_as_8bit)
{
	CHECK(parse("<\xff@x>", 0, 0) == SMTP_PATH_8BIT);
	CHECK(parse("<\xc3@x>", 0, 0) == SMTP_PATH_8BIT);		/* truncated */
	CHECK(parse("<a\xb6@x>", 0, 0) == SMTP_PATH_8BIT);		/* lone continuation */
	CHECK(parse("<\xc0\xaf@x>", 0, 0) == SMTP_PATH_8BIT);		/* overlong '/' */
	CHECK(parse("<\xc1\xbf@x>", 0, 0) == SMTP_PATH_8BIT);		/* overlong */
	CHECK(parse("<\xe0\x80\xaf@x>", 0, 0) == SMTP_PATH_8BIT);	/* overlong, 3 octets */
	CHECK(parse("<\xf0\x80\x80\xaf@x>", 0, 0) == SMTP_PATH_8BIT);	/* overlong, 4 octets */
	CHECK(parse("<\xed\xa0\x80@x>", 0, 0) == SMTP_PATH_8BIT);	/* surrogate U+D800 */
	CHECK(parse("<\xf4\x90\x80\x80@x>", 0, 0) == SMTP_PATH_8BIT);	/* U+110000 */
	CHECK(parse("<\xf8\x88\x80\x80\x80@x>", 0, 0) == SMTP_PATH_8BIT);	/* 5 octets */
	CHECK(parse("<\xc2\x85@x>", 0, 0) == SMTP_PATH_8BIT);		/* C1 control NEL */
	CHECK(parse("<a@ex\xc3mple.com>", 0, 0) == SMTP_PATH_8BIT);
	CHECK(parse("<\"a\xe9\"@x>", 0, 0) == SMTP_PATH_8BIT);
	CHECK(parse("<@\xe9:a@x>", 0, 0) == SMTP_PATH_8BIT);
	/* well-formed, but where no UTF-8 may stand: a quoted pair, an address literal */
	CHECK(parse("<\"a\\\xc3\xa4\"@x>", 0, 0) == SMTP_PATH_8BIT);
	CHECK(parse("<a@[1.2.3.\xc3\xa4]>", 0, 0) == SMTP_PATH_8BIT);
	/* the end of input inside a sequence never reads past len */
	CHECK(parse_n("<j\xc3\xb6", 3, 0, 0) == SMTP_PATH_8BIT);
}

TEST(utf8_limits_are_in_octets)
{
	char buf[300], local[200];
	size_t i;

	/* 32 two-octet characters = 64 octets: accepted; one more octet: too long */
	for (i = 0; i < 32; i++)
		memcpy(local + 2 * i, "\xc3\xa4", 2);
	local[64] = '\0';
	snprintf(buf, sizeof(buf), "<%s@x>", local);
	CHECK(parse(buf, 0, 0) == SMTP_PATH_OK);
	snprintf(buf, sizeof(buf), "<%sa@x>", local);
	CHECK(parse(buf, 0, 0) == SMTP_PATH_TOO_LONG);
}

TEST(missing_angle_brackets_are_syntax_errors)
{
	CHECK(parse("user@example.com", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK_STR(why, "missing '<'");
	CHECK(parse("<user@example.com", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK_STR(why, "missing '>'");
	CHECK(parse("", 1, 1) == SMTP_PATH_SYNTAX);
	CHECK(parse("<", 1, 1) == SMTP_PATH_SYNTAX);
	CHECK(parse(" <a@b>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("user@example.com>", 0, 0) == SMTP_PATH_SYNTAX);
}

TEST(spaces_inside_brackets_are_syntax_errors)
{
	CHECK(parse("< a@b>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK_STR(why, "space in path");
	CHECK(parse("<a@b >", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK_STR(why, "space in path");
	CHECK(parse("<a @b>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("<a@ b>", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse("< >", 1, 0) == SMTP_PATH_SYNTAX);
}

TEST(embedded_nul_is_syntax_error_and_len_bounds_reading)
{
	CHECK(parse_n("<a\0b@x>", 7, 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse_n("<a@x\0y>", 7, 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse_n("<\"a\0\"@x>", 8, 0, 0) == SMTP_PATH_SYNTAX);
	/* only the first len bytes count */
	CHECK(parse_n("<a@x>", 4, 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse_n("<a@x>", 3, 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse_n("<Postmaster>", 11, 0, 1) == SMTP_PATH_SYNTAX);
	CHECK(parse_n("<a@[1.2.3.4]>", 9, 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse_n("<a@[IPv6:::1]>", 8, 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(parse_n("<>", 1, 1, 0) == SMTP_PATH_SYNTAX);
	CHECK(smtp_path_parse(NULL, 0, 1, 1, &pth, NULL, NULL) == SMTP_PATH_SYNTAX);
}

TEST(rest_points_just_after_closing_bracket)
{
	CHECK(parse("<a@b> SIZE=100", 0, 0) == SMTP_PATH_OK);
	CHECK(restoff == 5);
	CHECK_STR(restbuf, " SIZE=100");
	CHECK(parse("<a@b>garbage", 0, 0) == SMTP_PATH_OK);
	CHECK_STR(restbuf, "garbage");
	CHECK(parse("<a@b>>", 0, 0) == SMTP_PATH_OK);
	CHECK_STR(restbuf, ">");
	CHECK(parse("<>x", 1, 0) == SMTP_PATH_OK);
	CHECK_STR(restbuf, "x");
}

TEST(failure_zeroes_the_result)
{
	CHECK(parse("<a@b>", 0, 0) == SMTP_PATH_OK);
	CHECK(parse("<\"x\"@[1.2.3.4] >", 0, 0) == SMTP_PATH_SYNTAX);
	CHECK(!pth.quoted && !pth.is_literal);
	CHECK_STR(pth.local, "");
	CHECK_STR(pth.domain, "");
}

static struct smtp_param prm[4];
static int nprm;

static int
params(const char *s, size_t max)
{
	why = NULL;
	nprm = smtp_params_parse(s, strlen(s), prm, max, &why);
	return nprm;
}

static int
key_is(int i, const char *k)
{
	return prm[i].keylen == strlen(k) && memcmp(prm[i].key, k, prm[i].keylen) == 0;
}

static int
value_is(int i, const char *v)
{
	if (v == NULL)
		return prm[i].value == NULL && prm[i].valuelen == 0;
	return prm[i].value != NULL && prm[i].valuelen == strlen(v) &&
	    memcmp(prm[i].value, v, prm[i].valuelen) == 0;
}

TEST(params_size_and_body_are_split)
{
	CHECK(params(" SIZE=100 BODY=8BITMIME", 4) == 2);
	CHECK(key_is(0, "SIZE") && value_is(0, "100"));
	CHECK(key_is(1, "BODY") && value_is(1, "8BITMIME"));
	CHECK(smtp_param_is(&prm[0], "size"));
	CHECK(smtp_param_is(&prm[1], "BODY"));
	CHECK(!smtp_param_is(&prm[0], "SIZ"));
	CHECK(!smtp_param_is(&prm[0], "SIZES"));
	CHECK(!smtp_param_is(&prm[0], "BODY"));
}

TEST(params_without_value_and_with_extra_spaces)
{
	CHECK(params("  SMTPUTF8   RET=HDRS  ", 4) == 2);
	CHECK(key_is(0, "SMTPUTF8") && value_is(0, NULL));
	CHECK(key_is(1, "RET") && value_is(1, "HDRS"));
	CHECK(params("", 4) == 0);
	CHECK(params("   ", 4) == 0);
	CHECK(params(" X-FOO-1=a+b<c>~", 4) == 1);
	CHECK(key_is(0, "X-FOO-1") && value_is(0, "a+b<c>~"));
	CHECK(smtp_params_parse(NULL, 0, prm, 4, NULL) == 0);
}

TEST(params_need_a_space_after_the_path)
{
	CHECK(params("SIZE=100", 4) == -1);
	CHECK_STR(why, "missing space before parameter");
}

TEST(params_bad_keyword_is_refused)
{
	CHECK(params(" -SIZE=1", 4) == -1);
	CHECK_STR(why, "bad parameter keyword");
	CHECK(params(" SI_ZE=1", 4) == -1);
	CHECK_STR(why, "bad parameter keyword");
	CHECK(params(" =1", 4) == -1);
	CHECK(params(" SIZE\t=1", 4) == -1);
	CHECK(params(" SIZE=1\tBODY=7BIT", 4) == -1);
	CHECK(params(" SIZE=1 \xc3\xa4", 4) == -1);
	CHECK(params(" SIZE=\xc3\xa4", 4) == -1);
}

TEST(params_equals_in_value_is_refused)
{
	CHECK(params(" AUTH=a=b", 4) == -1);
	CHECK_STR(why, "'=' in parameter value");
}

TEST(params_empty_value_is_refused)
{
	CHECK(params(" SIZE=", 4) == -1);
	CHECK_STR(why, "empty parameter value");
	CHECK(params(" SIZE= BODY=7BIT", 4) == -1);
}

TEST(params_more_than_max_are_refused)
{
	CHECK(params(" A B C D", 4) == 4);
	CHECK(params(" A B C D E", 4) == -1);
	CHECK_STR(why, "too many parameters");
	CHECK(params(" A", 0) == -1);
}

TEST(params_embedded_nul_is_refused)
{
	char *copy = malloc(9);

	memcpy(copy, " SIZE=1\0X", 9);
	CHECK(smtp_params_parse(copy, 9, prm, 4, &why) == -1);
	CHECK(smtp_params_parse(copy, 7, prm, 4, &why) == 1);	/* len bounds it */
	free(copy);
}

static char fmt[600];

/* Parse in, format it, compare with want, and check the formatted text parses back. */
static int
round_trip(const char *in, int an, int ap, const char *want)
{
	struct smtp_path first;
	int n;

	if (parse(in, an, ap) != SMTP_PATH_OK)
		return 0;
	first = pth;
	n = smtp_path_format(&first, fmt, sizeof(fmt));
	if (n < 0 || (size_t)n != strlen(fmt) || strcmp(fmt, want) != 0) {
		fprintf(stderr, "  format gave %s\n", fmt);
		return 0;
	}
	if (parse(fmt, an, ap) != SMTP_PATH_OK)
		return 0;
	return strcmp(pth.local, first.local) == 0 && strcmp(pth.domain, first.domain) == 0 &&
	    pth.is_null == first.is_null && pth.is_postmaster == first.is_postmaster &&
	    pth.is_literal == first.is_literal && !pth.has_route;
}

TEST(format_round_trip_requotes_local_part_when_needed)
{
	CHECK(round_trip("<\"a b\"@x>", 0, 0, "<\"a b\"@x>"));
	CHECK(round_trip("<\"a\\\"b\"@x>", 0, 0, "<\"a\\\"b\"@x>"));
	CHECK(round_trip("<\"a\\\\b\"@x>", 0, 0, "<\"a\\\\b\"@x>"));
	CHECK(round_trip("<\"\\a\\.b\"@x>", 0, 0, "<a.b@x>"));	/* needless quoting dropped */
	CHECK(round_trip("<\"a..b\"@x>", 0, 0, "<\"a..b\"@x>"));
	CHECK(round_trip("<\".a\"@x>", 0, 0, "<\".a\"@x>"));
	CHECK(round_trip("<u.v@Example.ORG>", 0, 0, "<u.v@Example.ORG>"));
	CHECK(round_trip("<>", 1, 0, "<>"));
	CHECK(round_trip("<postMaster>", 0, 1, "<postMaster>"));
	CHECK(round_trip("<@r1,@r2:u@[IPv6:::1]>", 0, 0, "<u@[IPv6:::1]>"));
	CHECK(round_trip("<a@[1.2.3.4]>", 0, 0, "<a@[1.2.3.4]>"));
}

TEST(addr_is_unbracketed_and_quoted_as_needed)
{
	char buf[100];

	CHECK(parse("<\"a b\"@x>", 0, 0) == SMTP_PATH_OK);
	CHECK(smtp_path_addr(&pth, buf, sizeof(buf)) == 7);
	CHECK_STR(buf, "\"a b\"@x");
	CHECK(parse("<>", 1, 0) == SMTP_PATH_OK);
	CHECK(smtp_path_addr(&pth, buf, sizeof(buf)) == 0);
	CHECK_STR(buf, "");
	CHECK(parse("<Postmaster>", 0, 1) == SMTP_PATH_OK);
	CHECK(smtp_path_addr(&pth, buf, sizeof(buf)) == 10);
	CHECK_STR(buf, "Postmaster");
}

TEST(format_returns_minus_one_when_buffer_too_small)
{
	char buf[8];

	CHECK(parse("<ab@cd>", 0, 0) == SMTP_PATH_OK);
	CHECK(smtp_path_format(&pth, buf, 8) == 7);
	CHECK_STR(buf, "<ab@cd>");
	CHECK(smtp_path_format(&pth, buf, 7) == -1);
	CHECK(smtp_path_addr(&pth, buf, 6) == 5);
	CHECK(smtp_path_addr(&pth, buf, 5) == -1);
	CHECK(parse("<>", 1, 0) == SMTP_PATH_OK);
	CHECK(smtp_path_format(&pth, buf, 2) == -1);
	CHECK(smtp_path_addr(&pth, buf, 0) == -1);
}

TEST(local_mailbox_rule)
{
	why = NULL;

	CHECK(smtp_local_mailbox_ok("alice", &why));
	CHECK(smtp_local_mailbox_ok("john smith", &why));
	CHECK(smtp_local_mailbox_ok("a.b+tag", &why));
	CHECK(!smtp_local_mailbox_ok("", &why));
	CHECK(!smtp_local_mailbox_ok(".hidden", &why));
	CHECK(!smtp_local_mailbox_ok("a/b", &why));
	CHECK(!smtp_local_mailbox_ok("bob>; X-Evil: 1 ;", &why));
	CHECK(!smtp_local_mailbox_ok("b@x@localhost", &why));
	CHECK(!smtp_local_mailbox_ok(" bob", &why));
	CHECK(!smtp_local_mailbox_ok("bob ", &why));
	CHECK(!smtp_local_mailbox_ok("a\"b", &why));
	CHECK(!smtp_local_mailbox_ok("a\\b", &why));
	CHECK(!smtp_local_mailbox_ok("a<b", &why));
	CHECK(!smtp_local_mailbox_ok("tab\there", &why));
	CHECK(why != NULL && why[0] != '\0');
}

TEST(requote_for_header)
{
	char buf[300];

	CHECK(smtp_addr_requote("alice@localhost", buf, sizeof(buf)) > 0);
	CHECK_STR(buf, "alice@localhost");
	CHECK(smtp_addr_requote("john smith@localhost", buf, sizeof(buf)) > 0);
	CHECK_STR(buf, "\"john smith\"@localhost");
	CHECK(smtp_addr_requote("bob>; X-Evil: 1 ;@example.org", buf, sizeof(buf)) > 0);
	CHECK_STR(buf, "\"bob>; X-Evil: 1 ;\"@example.org");
	CHECK(smtp_addr_requote("a\"b@example.org", buf, sizeof(buf)) > 0);
	CHECK_STR(buf, "\"a\\\"b\"@example.org");
	CHECK(smtp_addr_requote("no-at-sign", buf, sizeof(buf)) == -1);
	CHECK(smtp_addr_requote("a@b", buf, 3) == -1);
}

int
main(void)
{
	RUN(plain_mailbox_is_split_into_local_and_domain);
	RUN(domain_case_is_kept);
	RUN(dot_string_with_all_atext_specials_is_accepted);
	RUN(null_path_accepted_when_allowed);
	RUN(null_path_refused_when_not_allowed);
	RUN(quoted_local_part_is_unquoted);
	RUN(quoted_local_part_with_escaped_quote_is_unquoted);
	RUN(quoted_local_part_may_contain_brackets_and_at);
	RUN(bad_quoted_local_parts_are_syntax_errors);
	RUN(empty_local_part_is_syntax_error);
	RUN(bad_dot_strings_are_syntax_errors);
	RUN(bad_domains_are_syntax_errors);
	RUN(ipv4_literal_is_accepted_with_brackets_kept);
	RUN(invalid_ipv4_literals_are_refused);
	RUN(ipv6_literal_is_accepted);
	RUN(invalid_ipv6_literals_are_refused);
	RUN(general_address_literal_is_refused);
	RUN(source_route_is_stripped_and_flagged);
	RUN(malformed_source_routes_are_refused);
	RUN(bare_postmaster_accepted_only_when_allowed);
	RUN(postmaster_with_domain_is_an_ordinary_mailbox);
	RUN(local_part_of_64_octets_is_accepted_65_refused);
	RUN(quoted_local_part_limit_counts_quotes);
	RUN(domain_of_255_octets_is_within_its_limit_256_refused);
	RUN(path_of_256_octets_is_accepted_257_refused);
	RUN(path_limit_counts_the_source_route);
	RUN(utf8_local_part_and_domain_are_accepted_and_flagged);
	RUN(utf8_is_formatted_without_quotes);
	RUN(malformed_utf8_is_refused_as_8bit);
	RUN(utf8_limits_are_in_octets);
	RUN(missing_angle_brackets_are_syntax_errors);
	RUN(spaces_inside_brackets_are_syntax_errors);
	RUN(embedded_nul_is_syntax_error_and_len_bounds_reading);
	RUN(rest_points_just_after_closing_bracket);
	RUN(failure_zeroes_the_result);
	RUN(params_size_and_body_are_split);
	RUN(params_without_value_and_with_extra_spaces);
	RUN(params_need_a_space_after_the_path);
	RUN(params_bad_keyword_is_refused);
	RUN(params_equals_in_value_is_refused);
	RUN(params_empty_value_is_refused);
	RUN(params_more_than_max_are_refused);
	RUN(params_embedded_nul_is_refused);
	RUN(format_round_trip_requotes_local_part_when_needed);
	RUN(addr_is_unbracketed_and_quoted_as_needed);
	RUN(format_returns_minus_one_when_buffer_too_small);
	RUN(local_mailbox_rule);
	RUN(requote_for_header);
	T_EXIT();
}
