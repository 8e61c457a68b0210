/*
 * submit — one message over a connected stream socket to imsd's local submission socket,
 * blocking, with a time limit on every read and write: greeting, EHLO, MAIL, RCPT..., DATA
 * (dot-stuffed), QUIT. Used by `imsd sendmail` and by the server's maildrop pickup, so that
 * both reach the queue through the same SMTP session (limits, queue commit) as the network.
 */
#ifndef IMSD_SUBMIT_H
#define IMSD_SUBMIT_H

#include <stddef.h>
#include <stdint.h>

#define SUBMIT_TIMEOUT	120	/* seconds for any one read or write */
#define SUBMIT_REPLY_MAX 4096	/* a reply, all its lines */

struct submit {
	int fd;
	char in[SUBMIT_REPLY_MAX];
	size_t inlen;
	char text[512];		/* the last line of the last reply (or what went wrong) */
	int code;		/* its code; 0 when the connection failed */
	const char *stage;	/* greeting, EHLO, MAIL, RCPT, DATA, end of data */
};

/* Connect to the unix socket path (blocking, with SUBMIT_TIMEOUT). fd, or -1 (errno). */
int submit_connect(const char *path);

void submit_init(struct submit *s, int fd);

/* Send one command line (without CRLF) and read the reply: its code, or 0 when the
 * connection failed (s->text says why). */
int submit_cmd(struct submit *s, const char *line);

/* Read one reply. Code or 0. */
int submit_reply(struct submit *s);

/* Called for a recipient the server refused with 5xx (the others still get the message). */
typedef void submit_rejected_fn(void *arg, const char *rcpt, int code, const char *text);

/* The message: mem/len in memory (fd = -1), or len bytes of the file fd from offset off,
 * read in chunks (never the whole file in memory). */
struct submit_src {
	const char *mem;
	size_t len;
	int fd;
	uint64_t off;
};

/*
 * The whole submission. src: the message, not dot-stuffed, lines ending in CRLF, LF or CR:
 * every line is sent ending in CRLF and dot-stuffed, a last line without an end gets one,
 * and the data always ends with CRLF.CRLF. A 452 at RCPT after some
 * recipients were taken (recipient_limit) ends that transaction, and the rest go in the
 * next one. Returns the final code: 2xx the server queued the message for every recipient
 * it did not refuse (*nrejected refused with 5xx, each reported to rejected); 4xx/5xx the
 * failing reply, in s->text, at s->stage; 0 the connection failed. Either way *done says
 * how many of rcpts (from the first) are finished: queued or refused for good; the others
 * still want the message. Ends with QUIT.
 */
int submit_message(struct submit *s, const char *helo, const char *sender, char **rcpts,
    size_t nrcpts, const struct submit_src *src, submit_rejected_fn *rejected, void *arg,
    size_t *nrejected, size_t *done);

#endif
