/*
 * cfg — a loaded configuration snapshot (conf + recipients table), reference counted so
 * that a SIGHUP reload can swap it while sessions and the delivery thread keep theirs.
 */
#ifndef IMSD_CFG_H
#define IMSD_CFG_H

#include "conf/conf.h"
#include "policy/recipients.h"

struct cfg {
	struct conf conf;
	struct recipients *recipients;	/* NULL when recipients_file is unset */
	int refs;			/* atomic */
};

/* Load conf_path (NULL = embedded default) and what it names. NULL with err on failure. */
struct cfg *cfg_load(const char *conf_path, char *err, size_t errlen);
struct cfg *cfg_ref(struct cfg *c);
void cfg_unref(struct cfg *c);

#endif
