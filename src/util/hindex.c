/*
 * hindex — see hindex.h.
 */
#include <stdlib.h>

#include "util/hindex.h"

int
hindex_reserve(struct hindex *x, size_t n, size_t n_old,
    uint64_t (*hash_of)(const void *ctx, size_t i), const void *ctx)
{
	size_t ns;
	uint32_t *s;

	if (n > UINT32_MAX - 1)
		return -1;
	if (n * 2 <= x->nslots)
		return 0;
	ns = x->nslots ? x->nslots : 128;
	while (ns < n * 2)
		ns *= 2;
	if ((s = calloc(ns, sizeof(*s))) == NULL)
		return -1;
	free(x->slot);
	x->slot = s;
	x->nslots = ns;
	for (size_t i = 0; i < n_old; i++)
		hindex_put(x, hash_of(ctx, i), i);
	return 0;
}

void
hindex_put(struct hindex *x, uint64_t h, size_t idx)
{
	size_t mask = x->nslots - 1, i;

	for (i = (size_t)h & mask; x->slot[i]; i = (i + 1) & mask)
		;
	x->slot[i] = (uint32_t)(idx + 1);
}

size_t
hindex_next(const struct hindex *x, uint64_t h, size_t *pos)
{
	size_t mask, i;

	if (x->nslots == 0)
		return SIZE_MAX;
	mask = x->nslots - 1;
	/* *pos counts probe steps taken; a free slot ends the path */
	i = ((size_t)h + *pos) & mask;
	if (*pos >= x->nslots || x->slot[i] == 0)
		return SIZE_MAX;
	(*pos)++;
	return x->slot[i] - 1;
}

void
hindex_free(struct hindex *x)
{
	free(x->slot);
	x->slot = NULL;
	x->nslots = 0;
}
