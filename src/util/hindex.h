/*
 * hindex — an open-addressing index from 64-bit hashes to entry numbers, for tables whose
 * entries live in the caller's own array (recipients_file, auth_users_file). The index
 * only finds candidates with an equal hash; the caller compares its own keys.
 *
 * PURE apart from malloc. The load factor stays at most 1/2; at most UINT32_MAX - 1
 * entries.
 */
#ifndef IMSD_HINDEX_H
#define IMSD_HINDEX_H

#include <stddef.h>
#include <stdint.h>

struct hindex {
	uint32_t *slot;		/* entry number + 1; 0 = empty */
	size_t nslots;		/* a power of two, or 0 */
};

/* Make room for n entries, rehashing the n_old already indexed (hash_of gives entry i's
 * hash). 0 ok, -1 out of memory or too many entries. */
int hindex_reserve(struct hindex *x, size_t n, size_t n_old,
    uint64_t (*hash_of)(const void *ctx, size_t i), const void *ctx);
/* Index entry idx under hash h (room must have been reserved). */
void hindex_put(struct hindex *x, uint64_t h, size_t idx);
/* The candidates for hash h: start with *pos = 0; each call returns the next entry
 * number whose slot lies on h's probe path, or SIZE_MAX at the end. */
size_t hindex_next(const struct hindex *x, uint64_t h, size_t *pos);
void hindex_free(struct hindex *x);

#endif
