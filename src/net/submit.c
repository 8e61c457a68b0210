/*
 * submit — a blocking SMTP client for the local submission socket; see submit.h.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <stdint.h>
#include <unistd.h>

#include "net/submit.h"

int
submit_connect(const char *path)
{
	struct sockaddr_un sun;
	struct timeval tv = { SUBMIT_TIMEOUT, 0 };
	size_t n = strlen(path);
	int fd;

	if (n >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, n + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

void
submit_init(struct submit *s, int fd)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->stage = "greeting";
}

static int
fail(struct submit *s, const char *what)
{
	snprintf(s->text, sizeof(s->text), "%s: %s", what,
	    errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" :
	    errno == 0 ? "connection closed by the server" : strerror(errno));
	s->code = 0;
	return 0;
}

static int
write_all(struct submit *s, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
submit_reply(struct submit *s)
{
	for (;;) {
		char *nl;
		/* a complete line buffered? */
		while ((nl = memchr(s->in, '\n', s->inlen)) != NULL) {
			size_t n = (size_t)(nl - s->in) + 1, l = n - 1;
			if (l > 0 && s->in[l - 1] == '\r')
				l--;
			int last = l < 4 || s->in[3] != '-';
			if (l < 3 || s->in[0] < '2' || s->in[0] > '5' || s->in[1] < '0' ||
			    s->in[1] > '9' || s->in[2] < '0' || s->in[2] > '9') {
				snprintf(s->text, sizeof(s->text), "malformed reply from the server");
				s->code = 0;
				return 0;
			}
			int code = (s->in[0] - '0') * 100 + (s->in[1] - '0') * 10 + (s->in[2] - '0');
			snprintf(s->text, sizeof(s->text), "%.*s", (int)l, s->in);
			memmove(s->in, s->in + n, s->inlen - n);
			s->inlen -= n;
			if (last) {
				s->code = code;
				return code;
			}
		}
		if (s->inlen >= sizeof(s->in)) {
			snprintf(s->text, sizeof(s->text), "reply line too long from the server");
			s->code = 0;
			return 0;
		}
		ssize_t r = recv(s->fd, s->in + s->inlen, sizeof(s->in) - s->inlen, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = 0;
			return fail(s, "reading the reply");
		}
		s->inlen += (size_t)r;
	}
}

int
submit_cmd(struct submit *s, const char *line)
{
	char buf[1100];
	int n = snprintf(buf, sizeof(buf), "%s\r\n", line);

	if (n < 0 || (size_t)n >= sizeof(buf)) {
		snprintf(s->text, sizeof(s->text), "command too long");
		s->code = 0;
		return 0;
	}
	if (write_all(s, buf, (size_t)n) < 0)
		return fail(s, "sending a command");
	return submit_reply(s);
}

/* The message on its way out: line ends normalised, dot-stuffed, in 16 KiB writes. */
struct dataout {
	struct submit *s;
	size_t o;
	int bol;		/* at the beginning of a line */
	int cr;			/* a CR seen, its LF (or not) not yet */
	char out[16384];
};

static int
out_put(struct dataout *w, const char *p, size_t n)
{
	if (w->o + n > sizeof(w->out)) {
		if (write_all(w->s, w->out, w->o) < 0)
			return -1;
		w->o = 0;
	}
	memcpy(w->out + w->o, p, n);
	w->o += n;
	return 0;
}

/*
 * Feed message bytes. Every line goes out ending in CRLF, whatever ended it in the input:
 * CRLF, a bare LF or a bare CR (the last as the relay does: never a bare CR or LF on the
 * wire, so that nothing but our own CRLF.CRLF can end the data, and the server sees the
 * lines the user wrote). A line starting with a dot gets another (RFC 5321 4.5.2).
 */
static int
out_feed(struct dataout *w, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (w->cr) {
			w->cr = 0;
			if (out_put(w, "\r\n", 2) < 0)
				return -1;
			w->bol = 1;
			if (c == '\n')
				continue;
		}
		if (c == '\r') {
			w->cr = 1;
			continue;
		}
		if (c == '\n') {
			if (out_put(w, "\r\n", 2) < 0)
				return -1;
			w->bol = 1;
			continue;
		}
		if (w->bol && c == '.' && out_put(w, ".", 1) < 0)
			return -1;
		if (out_put(w, &c, 1) < 0)
			return -1;
		w->bol = 0;
	}
	return 0;
}

/* The message text from src, then the end of data: always CRLF.CRLF. */
static int
write_data(struct submit *s, const struct submit_src *src)
{
	struct dataout *w = malloc(sizeof(*w));
	int r = -1;

	if (w == NULL)
		return -1;
	w->s = s;
	w->o = 0;
	w->bol = 1;
	w->cr = 0;
	if (src->fd < 0) {
		if (out_feed(w, src->mem, src->len) < 0)
			goto out;
	} else {
		/* streamed from the file: never more than one chunk in memory */
		char buf[65536];
		uint64_t off = src->off, end = src->off + src->len;
		while (off < end) {
			size_t want = end - off < sizeof(buf) ? (size_t)(end - off) : sizeof(buf);
			ssize_t n = pread(src->fd, buf, want, (off_t)off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				if (n == 0)
					errno = EIO;	/* the file shrank under us */
				goto out;
			}
			if (out_feed(w, buf, (size_t)n) < 0)
				goto out;
			off += (uint64_t)n;
		}
	}
	if (w->cr || !w->bol) {
		/* the last line without its end (the file was cut short): ours */
		if (out_put(w, "\r\n", 2) < 0)
			goto out;
	}
	if (out_put(w, ".\r\n", 3) < 0 || write_all(s, w->out, w->o) < 0)
		goto out;
	r = 0;
out:
	free(w);
	return r;
}

int
submit_message(struct submit *s, const char *helo, const char *sender, char **rcpts,
    size_t nrcpts, const struct submit_src *src, submit_rejected_fn *rejected, void *arg,
    size_t *nrejected, size_t *done)
{
	char line[600];
	size_t i = 0;
	int code, last5 = 0;
	char last5text[512] = "";

	*nrejected = 0;
	*done = 0;
	s->stage = "greeting";
	if ((code = submit_reply(s)) != 220)
		goto out;
	s->stage = "EHLO";
	snprintf(line, sizeof(line), "EHLO %s", helo);
	if ((code = submit_cmd(s, line)) != 250)
		goto out;
	/* One transaction, or several when the server says 452 "too many recipients"
	 * (recipient_limit): the recipients it took get the message, the rest the next. */
	while (i < nrcpts) {
		size_t ok = 0;

		s->stage = "MAIL";
		snprintf(line, sizeof(line), "MAIL FROM:<%s>", sender);
		if ((code = submit_cmd(s, line)) != 250)
			goto out;
		s->stage = "RCPT";
		for (; i < nrcpts; i++) {
			snprintf(line, sizeof(line), "RCPT TO:<%s>", rcpts[i]);
			code = submit_cmd(s, line);
			if (code >= 200 && code < 300) {
				ok++;
				continue;
			}
			if (code == 452 && ok > 0)
				break;		/* this one starts the next transaction */
			if (code < 500)
				goto out;	/* 4xx or a broken connection: the rest waits */
			(*nrejected)++;
			last5 = code;
			snprintf(last5text, sizeof(last5text), "%s", s->text);
			if (rejected != NULL)
				rejected(arg, rcpts[i], code, s->text);
		}
		if (ok == 0) {
			/* every one refused: nothing to send */
			*done = i;
			code = last5;
			snprintf(s->text, sizeof(s->text), "%s", last5text);
			goto out;
		}
		s->stage = "DATA";
		if ((code = submit_cmd(s, "DATA")) != 354)
			goto out;
		s->stage = "end of data";
		if (write_data(s, src) < 0) {
			code = fail(s, "sending the message");
			goto out;
		}
		if ((code = submit_reply(s)) < 200 || code >= 300)
			goto out;
		*done = i;
	}
out:
	if (code != 0) {
		char keep[512];
		int k = s->code;
		snprintf(keep, sizeof(keep), "%s", s->text);
		(void)submit_cmd(s, "QUIT");
		s->code = k;
		snprintf(s->text, sizeof(s->text), "%s", keep);
	}
	return code;
}
