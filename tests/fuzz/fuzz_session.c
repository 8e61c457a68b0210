/*
 * fuzz_session — drive the SMTP state machine with arbitrary client bytes.
 *
 * The first byte picks the shape of the run: bit 0 answers commits with failure, bits 1-2
 * pick how input is split (whole, 1-byte, 7-byte, 64-byte pieces), bit 3 gives a tiny
 * message_size_limit and recipient_limit, bit 4 fails tx_write. Everything the session
 * writes must be whole reply lines ("ddd[ -]...\r\n"), and a 250 to the end of DATA must
 * only ever follow a commit. Every spool file opened (DATA, or the first BDAT chunk) is
 * committed or aborted exactly once, and never one that is not open.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "session/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct conf conf;
static int conf_ready;
static int committed, fail_write;
static int open_files;		/* tx_open minus commits and aborts: 0 or 1 */

static void
f_output(void *arg, const char *buf, size_t len)
{
	if (len < 5 || buf[len - 2] != '\r' || buf[len - 1] != '\n' ||
	    buf[0] < '2' || buf[0] > '5' || (buf[3] != ' ' && buf[3] != '-'))
		abort();
	if (len >= 25 && memcmp(buf, "250 2.0.0 Ok: queued as ", 24) == 0) {
		if (!committed)
			abort();
		committed = 0;
	}
}

static int
f_open(void *arg, struct session_tx *tx)
{
	if (tx->nrcpts == 0)
		abort();
	if (open_files != 0)
		abort();
	open_files++;
	memcpy(tx->qid, "FUZZ", 5);
	return 0;
}

static int
f_write(void *arg, const char *buf, size_t len)
{
	if (len == 0)
		abort();
	return fail_write ? (len & 1 ? SESSION_WRITE_NOSPACE : -1) : 0;
}

static void
f_commit(void *arg, struct session_tx *tx)
{
	if (open_files != 1)
		abort();
	committed = 1;
}

static void
f_abort(void *arg)
{
	if (open_files != 1)
		abort();
	open_files--;
}

static void
f_log(void *arg, int level, const char *line)
{
}

static int tls_requested, auth_requested;

static void
f_starttls(void *arg)
{
	tls_requested = 1;
}

static void
f_auth(void *arg, const char *user, const char *pass)
{
	if (user == NULL || pass == NULL)
		abort();
	auth_requested = 1;
}

static unsigned full_calls;
static int full_hit;

/* The output bound: say "full" now and then, as a server whose client reads slowly. */
static int
f_output_full(void *arg)
{
	if (++full_calls % 5 != 0)
		return 0;
	full_hit = 1;
	return 1;
}

static void
f_pause(void *arg, unsigned seconds)
{
	if (seconds == 0 || seconds > SESSION_ERROR_DELAY_MAX)
		abort();
}

static int
f_space(void *arg, uint64_t size)
{
	return full_calls % 7 != 3;
}

/* The client's standing across sessions after a refused recipient: go, slow, cut off. */
static int
f_rcpt_refused(void *arg)
{
	return full_calls % 11 == 5 ? -1 : full_calls % 3 == 1 ? 2 : 0;
}

static const struct session_ops ops = { f_output, f_open, f_write, f_commit, f_abort, f_log,
    f_starttls, f_auth, f_output_full, f_pause, f_space, NULL, f_rcpt_refused };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t splits[] = { 0, 1, 7, 64 };
	struct session_peer peer;
	struct session *s;
	char err[256];
	size_t pos = 0, piece, pendlen = 0;
	char *pend;

	if (!conf_ready) {
		if (conf_parse("fuzz", "", 0, "mx.example", &conf, err, sizeof(err)) < 0)
			abort();
		conf_ready = 1;
	}
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	data++;
	size--;
	conf.message_size_limit = (mode & 8) ? 2048 : 10485760;
	conf.recipient_limit = (mode & 8) ? 2 : 1000;
	fail_write = (mode & 16) != 0;
	piece = splits[(mode >> 1) & 3];
	if (piece == 0)
		piece = size ? size : 1;
	committed = 0;
	open_files = 0;

	memset(&peer, 0, sizeof(peer));
	netaddr_parse((mode & 32) ? "198.51.100.10" : "127.0.0.1", &peer.local);
	netaddr_parse("192.0.2.1", &peer.remote);
	struct session_opts opts = { .kind = (mode & 128) ? SL_SUBMISSION : SL_SMTP,
	    .cert_loaded = (mode & 32) != 0, .auth_available = (mode & 64) != 0 };
	tls_requested = auth_requested = 0;
	s = session_new(&conf, NULL, &peer, &opts, "fz", &ops, NULL);
	session_start(s, NULL);
	pend = malloc(size + 1);
	while (pos < size || pendlen > 0) {
		size_t n = size - pos < piece ? size - pos : piece;
		memcpy(pend + pendlen, data + pos, n);
		pendlen += n;
		pos += n;
		full_hit = 0;
		size_t used = session_feed(s, pend, pendlen);
		if (used > pendlen)
			abort();
		memmove(pend, pend + used, pendlen - used);
		pendlen -= used;
		if (session_state(s) == SS_COMMIT) {
			session_commit_done(s, (mode & 1) ? (pos & 1 ? 0 : SESSION_COMMIT_NOSPACE) : 1);
			open_files--;	/* the queue's commit took the file */
		}
		else if (session_state(s) == SS_STARTTLS) {
			/* the server discards what was pipelined behind STARTTLS */
			pendlen = 0;
			session_tls_done(s, "TLSv1.3 with cipher FUZZ (256 bits)");
		} else if (session_state(s) == SS_AUTHWAIT)
			session_auth_done(s, (mode & 1) ? 1 : (pos % 3 == 0 ? SESSION_AUTH_LOCKED : 0));
		else if (session_state(s) == SS_CLOSING)
			break;
		else if (used == 0 && pos >= size && !full_hit)
			break;
	}
	session_timeout(s);
	free(pend);
	session_free(s);
	if (open_files != 0)
		abort();	/* a spool file left open: nothing would ever remove it */
	return 0;
}
