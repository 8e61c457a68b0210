/*
 * fuzz_transport — libFuzzer target for src/policy/transport.c (transport_map files) and
 * conf_transport_parse.
 *
 * The input is parsed as a transport_map. On success every entry's domain must be
 * lower-case ASCII without a trailing dot, found again by lookup, listed once, and its
 * transport must print (conf_transport_str) to text that parses back to the same transport;
 * on failure the error must say FILE:LINE. Each line is also parsed alone as a transport,
 * with the same round trip. Any violation abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int cond)
{
	if (!cond)
		abort();
}

static void
round_trip(const struct conf_transport *t)
{
	struct conf_transport u;
	char buf[CONF_SOCKPATH_MAX + 300], why[512];

	conf_transport_str(t, buf, sizeof(buf));
	check(conf_transport_parse(buf, &u, why, sizeof(why)) == 0);
	check(u.kind == t->kind && u.port == t->port);
	check(strcmp(u.path, t->path) == 0 && strcmp(u.host, t->host) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];
	struct transport_map *m;
	char *text;

	m = transport_map_parse("f", (const char *)data, size, err, sizeof(err));
	if (m != NULL) {
		for (size_t i = 0; i < transport_map_count(m); i++) {
			const char *d = transport_map_domain(m, i);
			size_t dl = strlen(d);

			check(dl > 0 && d[dl - 1] != '.');
			for (size_t k = 0; k < dl; k++)
				check((unsigned char)d[k] < 0x80 && !(d[k] >= 'A' && d[k] <= 'Z'));
			check(transport_map_lookup(m, d) == transport_map_transport(m, i));
			round_trip(transport_map_transport(m, i));
		}
		transport_map_free(m);
	} else
		check(strncmp(err, "f:", 2) == 0);

	/* each line alone, as mailbox_transport's value */
	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (char *line = text, *nl; line != NULL; line = nl) {
		struct conf_transport t;
		char why[512];

		if ((nl = strchr(line, '\n')) != NULL)
			*nl++ = '\0';
		if (strlen(line) < 2000 && conf_transport_parse(line, &t, why, sizeof(why)) == 0)
			round_trip(&t);
	}
	free(text);
	return 0;
}
