/*
 * rcptcache — what the mailbox server said about recipients lately (recipient_check =
 * transport): a small, bounded cache of verdicts so that a burst of mail to one address asks
 * Dovecot once, not at every RCPT.
 *
 * PURE: no clock (now is passed in), no I/O, no locking (the caller serialises access).
 * Entries: the address (lower-case), the verdict, and when it expires. Only definite answers
 * are kept: "exists" for RCPTC_POS_TTL seconds, "unknown user" for RCPTC_NEG_TTL (shorter,
 * so a user created a moment ago is not refused for long); "could not ask" is never cached.
 * At most RCPTC_SLOTS entries: a full cache replaces the entry that expires first.
 */
#ifndef IMSD_RCPTCACHE_H
#define IMSD_RCPTCACHE_H

#include <stddef.h>
#include <time.h>

#define RCPTC_SLOTS	1024
#define RCPTC_POS_TTL	300	/* seconds an "exists" is believed */
#define RCPTC_NEG_TTL	60	/* seconds an "unknown user" is believed */
#define RCPTC_ADDR_MAX	320

enum rcptc_verdict { RCPTC_UNKNOWN_ENTRY = 0, RCPTC_EXISTS, RCPTC_NO_SUCH_USER };

struct rcptc_entry {
	char addr[RCPTC_ADDR_MAX];
	int verdict;
	time_t expires;
	char reply[160];		/* the server's refusal, for a NO_SUCH_USER */
};

struct rcptcache {
	struct rcptc_entry e[RCPTC_SLOTS];
	size_t n;
};

void rcptcache_init(struct rcptcache *c);
/* The verdict cached for addr_lc at now (RCPTC_UNKNOWN_ENTRY: ask); *reply is the refusal
 * text of a NO_SUCH_USER. */
int rcptcache_get(const struct rcptcache *c, const char *addr_lc, time_t now, const char **reply);
/* Remember a definite verdict (RCPTC_EXISTS / RCPTC_NO_SUCH_USER) for addr_lc. */
void rcptcache_put(struct rcptcache *c, const char *addr_lc, int verdict, const char *reply,
    time_t now);

#endif
