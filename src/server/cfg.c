/*
 * cfg — configuration snapshots; see cfg.h.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/cfg.h"

/* Load a snapshot; see cfg.h. */
struct cfg *
cfg_load(const char *conf_path, char *err, size_t errlen)
{
	struct cfg *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (conf_load(conf_path, &c->conf, err, errlen) < 0) {
		free(c);
		return NULL;
	}
	if (c->conf.recipients_file != NULL) {
		c->recipients = recipients_load(c->conf.recipients_file, err, errlen);
		if (c->recipients == NULL) {
			conf_free(&c->conf);
			free(c);
			return NULL;
		}
	}
	c->refs = 1;
	return c;
}

struct cfg *
cfg_ref(struct cfg *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void
cfg_unref(struct cfg *c)
{
	if (c == NULL || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	if (c->recipients != NULL)
		recipients_free(c->recipients);
	conf_free(&c->conf);
	free(c);
}
