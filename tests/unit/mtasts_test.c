/* Unit tests for src/policy/mtasts.c. */
#include "t.h"
#include "policy/mtasts.h"

static char why[200], id[MTASTS_ID_MAX + 1];
static struct mtasts_policy p;

static int txt(const char *s)
{
	why[0] = id[0] = '\0';
	return mtasts_txt_parse(s, strlen(s), id, why, sizeof why);
}

static int pol(const char *s)
{
	why[0] = '\0';
	return mtasts_policy_parse(s, strlen(s), &p, why, sizeof why);
}

TEST(txt_records)
{
	CHECK(txt("v=STSv1; id=20160831085700Z;") == 1);
	CHECK_STR(id, "20160831085700Z");
	CHECK(txt("v=STSv1;id=abc ; ext=1") == 1);
	CHECK_STR(id, "abc");
	CHECK(txt("v=spf1 -all") == 0);
	CHECK(txt("id=1; v=STSv1") == 0);		/* v must be first */
	CHECK(txt("") == 0);
	CHECK(txt("v=STSv1") == -1);
	CHECK_STR(why, "no id field");
	CHECK(txt("v=STSv1; id=a-b") == -1);
	CHECK_STR(why, "id must be 1 to 32 letters and digits");
	CHECK(txt("v=STSv1; id=123456789012345678901234567890123") == -1);
	CHECK(txt("v=STSv1; id=1; id=2") == -1);
	CHECK_STR(why, "id appears twice");
	CHECK(txt("v=STSv1; junk") == -1);
	CHECK_STR(why, "field 2 has no '='");
}

TEST(policies)
{
	CHECK(pol("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
	    "mx: *.Example.NET.\r\nmax_age: 604800\r\n") == 0);
	CHECK(p.mode == MTASTS_ENFORCE && p.max_age == 604800 && p.nmx == 2);
	CHECK_STR(p.mx[1], "*.example.net");
	CHECK(mtasts_mx_match(&p, "MAIL.example.com."));
	CHECK(mtasts_mx_match(&p, "mx1.example.net"));
	CHECK(!mtasts_mx_match(&p, "example.net"));		/* one label more, not zero */
	CHECK(!mtasts_mx_match(&p, "a.b.example.net"));	/* nor two */
	CHECK(!mtasts_mx_match(&p, "evil-example.com"));
	CHECK(pol("version: STSv1\nmode: none\nmax_age: 0\nfuture: x\n") == 0);
	CHECK(p.mode == MTASTS_NONE && p.nmx == 0);
	CHECK(pol("version: STSv1\nmode: testing\nmax_age: 86400\nmx: a.test") == 0);
	CHECK(p.mode == MTASTS_TESTING);
}

TEST(bad_policies_say_which_line)
{
	CHECK(pol("version: STSv2\nmode: enforce\n") == -1);
	CHECK_STR(why, "line 1: version is not STSv1");
	CHECK(pol("version: STSv1\nmode: strict\n") == -1);
	CHECK_STR(why, "line 2: mode is not enforce, testing or none");
	CHECK(pol("version: STSv1\nmode: enforce\nmax_age: 31557601\n") == -1);
	CHECK_STR(why, "line 3: max_age must be 0 to 31557600 seconds");
	CHECK(pol("version: STSv1\nmode: enforce\nmax_age: -1\n") == -1);
	CHECK(pol("version: STSv1\nmode: enforce\nmax_age: 1\n") == -1);
	CHECK_STR(why, "no mx line (required in mode enforce)");
	CHECK(pol("version: STSv1\nmode: enforce\nmax_age: 1\nmx: a..b\n") == -1);
	CHECK_STR(why, "line 4: mx is not a host name or *.name");
	CHECK(pol("version: STSv1\nmode: enforce\nmx: *.\nmax_age: 1\n") == -1);
	CHECK(pol("version: STSv1\nmode: enforce\nmx: a.*.b\nmax_age: 1\n") == -1);
	CHECK(pol("version: STSv1\nmode: none\nmode: none\n") == -1);
	CHECK_STR(why, "line 3: mode appears twice");
	CHECK(pol("version: STSv1\nmode: none\n") == -1);
	CHECK_STR(why, "no max_age line");
	CHECK(pol("<html>\n") == -1);
	CHECK_STR(why, "line 1: not \"key: value\"");
	{
		char big[MTASTS_POLICY_MAX + 2];
		memset(big, '\n', sizeof big);
		CHECK(mtasts_policy_parse(big, sizeof big, &p, why, sizeof why) == -1);
		CHECK_STR(why, "the policy has 65538 bytes (at most 65536)");
	}
	{
		char many[4000] = "version: STSv1\nmode: enforce\nmax_age: 1\n";
		for (int i = 0; i <= MTASTS_MX_MAX; i++)
			strcat(many, "mx: a.test\n");
		CHECK(pol(many) == -1);
		CHECK_STR(why, "line 36: more than 32 mx lines");
	}
}

int main(void)
{
	RUN(txt_records);
	RUN(policies);
	RUN(bad_policies_say_which_line);
	T_EXIT();
}
