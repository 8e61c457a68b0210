/*
 * fuzz_conf — conf_parse on arbitrary bytes.
 *
 * Besides memory safety it checks that what conf_print writes is configuration text that
 * parses back to the same settings: print(parse(print(c))) equals print(c), comments
 * aside. (A printed list may be longer than the line limit, since
 * "*:25" prints as "0.0.0.0:25"; that one refusal is allowed.)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *print_to_string(const struct conf *c)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	if (fp == NULL)
		abort();
	conf_print(c, fp);
	fclose(fp);
	return buf;
}

/* Remove every occurrence of mark from s, in place. */
static void strip(char *s, const char *mark)
{
	size_t ml = strlen(mark);
	char *p;

	while ((p = strstr(s, mark)) != NULL)
		memmove(p, p + ml, strlen(p + ml) + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf c, c2;
	char err[512];
	char *p1, *p2;

	if (conf_parse("fuzz.conf", (const char *)data, size, "fuzz.example", &c, err, sizeof err) != 0) {
		if (err[0] == '\0')
			abort();	/* every failure says why */
		return 0;
	}
	for (int k = 0; k < CK__COUNT; k++)
		(void)conf_not_in_effect(&c, (enum conf_key)k);
	(void)conf_is_local_domain(&c, "localhost");

	p1 = print_to_string(&c);
	if (conf_parse("printed", p1, strlen(p1), "other.example", &c2, err, sizeof err) != 0) {
		if (strstr(err, "line too long") == NULL) {
			fprintf(stderr, "printed configuration does not parse: %s\n%s", err, p1);
			abort();
		}
	} else {
		p2 = print_to_string(&c2);
		/* the marks depend on which keys were given, and now all of them are */
		strip(p1, "  # default");
		strip(p1, "  # not yet in effect");
		strip(p2, "  # not yet in effect");
		if (strcmp(p1, p2) != 0) {
			fprintf(stderr, "round trip differs:\n%s---\n%s", p1, p2);
			abort();
		}
		free(p2);
		conf_free(&c2);
	}
	free(p1);
	conf_free(&c);
	return 0;
}
