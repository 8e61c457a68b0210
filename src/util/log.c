/*
 * log — one event per line on stderr; see log.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

int log_threshold = LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static void log_vwrite(enum log_level lvl, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
log_vwrite(enum log_level lvl, const char *fmt, va_list ap)
{
	char line[8192];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int r;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ", (long)(tv.tv_usec / 1000),
	    level_names[lvl]);
	if (r > 0)
		n += (size_t)r;
	r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (r < 0)
		r = 0;
	n += (size_t)r;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	/* Whatever a caller formatted, one event is one line: a stray CR or LF (a peer's
	 * multi-line reply, a file name) cannot start a forged line of its own. */
	for (size_t i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	/* One write(2) per line keeps lines whole when threads log at once. */
	while (write(STDERR_FILENO, line, n) < 0 && errno == EINTR)
		;
}

/* Log one event at level lvl (printf format). */
void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	if ((int)lvl > log_level_now())
		return;
	va_start(ap, fmt);
	log_vwrite(lvl, fmt, ap);
	va_end(ap);
}

/* Log at error level and exit with status 2 (runtime failure). */
void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_ERROR, fmt, ap);
	va_end(ap);
	exit(2);
}

/* Escape client text for a log line; see log.h. */
char *
log_safe(char *out, size_t outlen, const char *in, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i;

	if (outlen == 0)
		return out;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		size_t need = (c < 0x20 || c >= 0x7f) ? 4 : (c == '"' || c == '\\') ? 2 : 1;

		if (o + need + 4 > outlen) {
			if (o + 4 <= outlen) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (need == 4) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else if (need == 2) {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}

/* "error|warn|info|debug" → level; -1 when unknown. */
int
log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

/* The name of a level. */
const char *
log_level_name(int lvl)
{
	return (lvl >= 0 && lvl < 4) ? level_names[lvl] : "?";
}

/* Does this byte force a logfmt value into quotes? */
static int
needs_quote(unsigned char c)
{
	return c <= 0x20 || c >= 0x7f || c == '"' || c == '=' || c == '\\';
}

/* Format text from outside as one logfmt value; see log.h. */
const char *
log_value(char *out, size_t outlen, const char *in, size_t len)
{
	size_t i, n;
	int quote = len == 0;

	if (outlen < 8) {
		if (outlen > 0)
			out[0] = '\0';
		return out;
	}
	for (i = 0; i < len && !quote; i++)
		quote = needs_quote((unsigned char)in[i]);
	if (!quote && len < outlen) {
		memcpy(out, in, len);
		out[len] = '\0';
		return out;
	}
	/* Quoted (also when cut short: "..." needs the quotes): log_safe's escapes inside. */
	out[0] = '"';
	log_safe(out + 1, outlen - 2, in, len);
	n = strlen(out);
	out[n] = '"';
	out[n + 1] = '\0';
	return out;
}

const char *
log_addr(char *out, size_t outlen, const char *addr)
{
	char tmp[LOG_VALUE_MAX];
	size_t n = strlen(addr);

	if (n > sizeof(tmp) - 3)
		n = sizeof(tmp) - 3;
	tmp[0] = '<';
	memcpy(tmp + 1, addr, n);
	tmp[n + 1] = '>';
	return log_value(out, outlen, tmp, n + 2);
}
