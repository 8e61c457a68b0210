/* mime8: 8-bit MIME to quoted-printable for peers without 8BITMIME. */
#include <stdlib.h>

#include "proto/mime8.h"
#include "t.h"

static char *out;
static size_t outlen;
static char why[200];

static int
conv(const char *m)
{
	free(out);
	out = NULL;
	why[0] = '\0';
	if (mime8_downgrade(m, strlen(m), &out, &outlen, why, sizeof(why)) < 0)
		return -1;
	out = realloc(out, outlen + 1);
	out[outlen] = '\0';
	return 0;
}

/* Decode quoted-printable text (soft breaks removed, =XX decoded). */
static char *
qp_decode(const char *s)
{
	char *d = malloc(strlen(s) + 1), *o = d;
	while (*s) {
		if (s[0] == '=' && s[1] == '\r' && s[2] == '\n') {
			s += 3;
		} else if (s[0] == '=' && s[1] && s[2]) {
			char h[3] = { s[1], s[2], 0 };
			*o++ = (char)strtol(h, NULL, 16);
			s += 3;
		} else
			*o++ = *s++;
	}
	*o = '\0';
	return d;
}

static int
max_line(const char *s)
{
	int m = 0, c = 0;
	for (; *s; s++) {
		if (*s == '\n') {
			c = 0;
			continue;
		}
		if (*s != '\r' && ++c > m)
			m = c;
	}
	return m;
}

TEST(seven_bit_messages_are_unchanged)
{
	const char *m = "From: a@b\r\nSubject: x\r\n\r\nplain text\r\n";
	CHECK(conv(m) == 0);
	CHECK_STR(out, m);
}

TEST(an_8bit_text_body_becomes_quoted_printable_that_decodes_to_the_original)
{
	char body[3000], msg[4000], *dec;
	size_t o = 0;
	for (int i = 0; i < 20; i++)
		o += (size_t)snprintf(body + o, sizeof(body) - o, "caf\xc3\xa9 = %d %s \r\n", i,
		    "a long line with words that goes on and on beyond seventy-six characters, "
		    "surely, yes");
	snprintf(msg, sizeof(msg), "From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; "
	    "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s", body);
	CHECK(conv(msg) == 0);
	CHECK(strstr(out, "Content-Transfer-Encoding: quoted-printable\r\n\r\n") != NULL);
	CHECK(strstr(out, "8bit") == NULL);
	CHECK(!mime8_has_8bit(out, outlen));
	CHECK(max_line(out) <= MIME8_QP_LINE);
	CHECK(strstr(out, "caf=C3=A9 =3D 0") != NULL);
	CHECK(strstr(out, "yes=20\r\n") != NULL);	/* trailing space encoded */
	dec = qp_decode(strstr(out, "\r\n\r\n") + 4);
	CHECK_STR(dec, body);
	free(dec);
}

TEST(a_message_without_mime_version_gets_one)
{
	CHECK(conv("From: a@b\r\nSubject: s\r\n\r\nna\xefve\r\n") == 0);
	CHECK_STR(out, "From: a@b\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\nna=EFve\r\n");
}

TEST(multipart_converts_only_the_8bit_parts_and_keeps_boundaries)
{
	const char *m =
	    "From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n"
	    "preamble\r\n--XX\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
	    "\xfc" "ber\r\n--XX\r\nContent-Type: application/octet-stream\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--XX--\r\nepilogue\r\n";
	CHECK(conv(m) == 0);
	CHECK(!mime8_has_8bit(out, outlen));
	CHECK(strstr(out, "--XX\r\nContent-Type: text/plain\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n=FCber\r\n--XX\r\n") != NULL);
	CHECK(strstr(out, "Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--XX--\r\nepilogue")
	    != NULL);
	CHECK(strstr(out, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed") != NULL);
}

TEST(an_enclosed_message_is_converted_inside)
{
	const char *m =
	    "From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\nFrom: c@d\r\nSubject: in\r\n\r\n\xe9t\xe9\r\n";
	CHECK(conv(m) == 0);
	CHECK(!mime8_has_8bit(out, outlen));
	CHECK(strstr(out, "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"
	    "From: c@d\r\nSubject: in\r\nMIME-Version: 1.0\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E9t=E9\r\n") != NULL);
}

TEST(what_cannot_be_made_7bit_is_refused_with_a_reason)
{
	CHECK(conv("Content-Transfer-Encoding: binary\r\n\r\n\x01\xff\r\n") < 0);
	CHECK(strstr(why, "binary") != NULL);
	CHECK(conv("Content-Type: multipart/mixed; boundary=Q\r\n\r\n--Q\r\n\r\n\xff\r\n") < 0);
	CHECK(strstr(why, "never closes") != NULL);
	CHECK(conv("Content-Type: message/global\r\n\r\n\xff\r\n") < 0);
	CHECK(conv("Content-Type: multipart/mixed\r\n\r\n\xff\r\n") < 0);
	CHECK(strstr(why, "no boundary") != NULL);
}

int
main(void)
{
	RUN(seven_bit_messages_are_unchanged);
	RUN(an_8bit_text_body_becomes_quoted_printable_that_decodes_to_the_original);
	RUN(a_message_without_mime_version_gets_one);
	RUN(multipart_converts_only_the_8bit_parts_and_keeps_boundaries);
	RUN(an_enclosed_message_is_converted_inside);
	RUN(what_cannot_be_made_7bit_is_refused_with_a_reason);
	free(out);
	T_EXIT();
}
