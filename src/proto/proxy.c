/*
 * proxy — PROXY protocol v1/v2 headers; see proxy.h.
 */
#include <string.h>
#include <sys/socket.h>

#include "proto/proxy.h"

static const unsigned char v2sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

#define FAIL(msg) do { *why = (msg); return -1; } while (0)

/* A decimal port 0..65535 without leading zeros (v1 spells them plainly). */
static int
parse_port(const char *s, size_t n, uint16_t *out)
{
	unsigned v = 0;

	if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

static int
parse_v1(const unsigned char *buf, size_t len, struct proxy_hdr *out, const char **why)
{
	const char *p = (const char *)buf;
	const char *crlf = NULL;
	char line[PROXY_V1_MAX + 1];
	char *field[6];
	size_t n = 0, nf = 0;

	for (size_t i = 0; i + 1 < len && i + 2 <= PROXY_V1_MAX; i++)
		if (p[i] == '\r' && p[i + 1] == '\n') {
			crlf = p + i;
			break;
		}
	if (crlf == NULL) {
		if (len >= PROXY_V1_MAX)
			FAIL("v1 header longer than 107 bytes");
		for (size_t i = 0; i < len; i++)
			if (p[i] == '\n' || p[i] == '\0')
				FAIL("v1 header without CRLF");
		return 0;
	}
	n = (size_t)(crlf - p);
	memcpy(line, p, n);
	line[n] = '\0';
	if (memchr(line, '\0', n) != NULL)
		FAIL("NUL byte in v1 header");
	/* split on single spaces */
	for (char *s = line, *e;; s = e + 1) {
		field[nf++] = s;
		if (nf == 6 || (e = strchr(s, ' ')) == NULL)
			break;	/* the sixth field keeps whatever follows: checked below */
		*e = '\0';
	}
	if (nf < 2 || strcmp(field[0], "PROXY") != 0)
		FAIL("v1 header does not start with \"PROXY \"");
	memset(out, 0, sizeof(*out));
	out->version = 1;
	if (strcmp(field[1], "UNKNOWN") == 0)
		return (int)(n + 2);	/* the rest of the line is ignored (the spec says so) */
	if (strcmp(field[1], "TCP4") != 0 && strcmp(field[1], "TCP6") != 0)
		FAIL("v1 protocol is not TCP4, TCP6 or UNKNOWN");
	if (nf != 6 || strchr(field[5], ' ') != NULL)
		FAIL("v1 header needs exactly: PROXY proto src dst sport dport");
	int fam = field[1][3] == '4' ? AF_INET : AF_INET6;
	if (netaddr_parse(field[2], &out->src) < 0 || netaddr_parse(field[3], &out->dst) < 0)
		FAIL("v1 address is not an IP address");
	/* the family must be the one named (a v4-mapped v6 address folds to AF_INET) */
	if ((fam == AF_INET) != (out->src.family == AF_INET && strchr(field[2], ':') == NULL) ||
	    (fam == AF_INET) != (out->dst.family == AF_INET && strchr(field[3], ':') == NULL))
		FAIL("v1 address does not match the protocol");
	if (parse_port(field[4], strlen(field[4]), &out->sport) < 0 ||
	    parse_port(field[5], strlen(field[5]), &out->dport) < 0)
		FAIL("v1 port is not a number from 0 to 65535");
	out->has_addr = 1;
	return (int)(n + 2);
}

static int
parse_v2(const unsigned char *buf, size_t len, struct proxy_hdr *out, const char **why)
{
	size_t total;
	unsigned ver_cmd, fam, alen;

	if (len < 16)
		return 0;
	ver_cmd = buf[12];
	fam = buf[13];
	alen = (unsigned)buf[14] << 8 | buf[15];
	if ((ver_cmd >> 4) != 2)
		FAIL("v2 version nibble is not 2");
	if ((ver_cmd & 15) > 1)
		FAIL("v2 command is neither LOCAL nor PROXY");
	total = 16 + (size_t)alen;
	if (total > PROXY_V2_MAX)
		FAIL("v2 header longer than 4096 bytes");
	if (len < total)
		return 0;
	memset(out, 0, sizeof(*out));
	out->version = 2;
	if ((ver_cmd & 15) == 0)
		return (int)total;	/* LOCAL: the balancer's own health check */
	switch (fam) {
	case 0x11:		/* TCP over IPv4 */
		if (alen < 12)
			FAIL("v2 IPv4 address block too short");
		out->src.family = out->dst.family = AF_INET;
		memcpy(out->src.a, buf + 16, 4);
		memcpy(out->dst.a, buf + 20, 4);
		out->sport = (uint16_t)(buf[24] << 8 | buf[25]);
		out->dport = (uint16_t)(buf[26] << 8 | buf[27]);
		out->has_addr = 1;
		break;
	case 0x21:		/* TCP over IPv6 */
		if (alen < 36)
			FAIL("v2 IPv6 address block too short");
		out->src.family = out->dst.family = AF_INET6;
		memcpy(out->src.a, buf + 16, 16);
		memcpy(out->dst.a, buf + 32, 16);
		out->sport = (uint16_t)(buf[48] << 8 | buf[49]);
		out->dport = (uint16_t)(buf[50] << 8 | buf[51]);
		out->has_addr = 1;
		{
			/* fold ::ffff:a.b.c.d as the rest of imsd does */
			static const unsigned char m[12] = { [10] = 0xff, [11] = 0xff };
			struct netaddr *v[2] = { &out->src, &out->dst };
			for (int i = 0; i < 2; i++)
				if (memcmp(v[i]->a, m, 12) == 0) {
					unsigned char a4[4];
					memcpy(a4, v[i]->a + 12, 4);
					memset(v[i]->a, 0, sizeof(v[i]->a));
					memcpy(v[i]->a, a4, 4);
					v[i]->family = AF_INET;
				}
		}
		break;
	case 0x00:		/* UNSPEC: keep the connection's addresses */
	default:		/* UDP, unix sockets: nothing an SMTP session can use */
		break;
	}
	return (int)total;
}

int
proxy_parse(const unsigned char *buf, size_t len, struct proxy_hdr *out, const char **why)
{
	size_t k = len < sizeof(v2sig) ? len : sizeof(v2sig);

	*why = "";
	if (len == 0)
		return 0;
	if (memcmp(buf, v2sig, k) == 0)
		return k < sizeof(v2sig) ? 0 : parse_v2(buf, len, out, why);
	k = len < 6 ? len : 6;
	if (memcmp(buf, "PROXY ", k) == 0)
		return k < 6 ? 0 : parse_v1(buf, len, out, why);
	FAIL("no PROXY header (v1 or v2) where one is required");
}
