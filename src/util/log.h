/*
 * log — one event per line on stderr.
 *
 * Lines read "LEVEL key=value ..." after a timestamp; callers put the session or queue id
 * first. log_* are thread-safe (each line is one write(2)). Client-supplied text must go
 * through log_safe() first, which escapes control and 8-bit bytes and cuts it short.
 */
#ifndef IMSD_LOG_H
#define IMSD_LOG_H

#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern int log_threshold;

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
/* log_threshold is read by every thread and written by a reload: atomically. */
#define log_level_now() __atomic_load_n(&log_threshold, __ATOMIC_RELAXED)
#define log_set_level(l) __atomic_store_n(&log_threshold, (l), __ATOMIC_RELAXED)
#define log_info(...)  do { if (log_level_now() >= LOG_INFO) log_msg(LOG_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_level_now() >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

/* Print a message and exit(2): the environment is unusable. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * Copy at most len bytes of client text into out (size outlen) with every byte outside
 * printable ASCII written as \xHH and quotes/backslashes escaped; "..." marks truncation.
 * Returns out.
 */
char *log_safe(char *out, size_t outlen, const char *in, size_t len);

/*
 * Every value that comes from outside (an address, a HELO name, a peer's reply, an error
 * text naming a file) goes into a log line through log_value or log_addr, so no value can
 * fake a field or a line: a value that is non-empty printable ASCII without space, '=',
 * '"' or '\\' is written bare; any other is written in double quotes with '"' and '\\'
 * escaped and every byte outside printable ASCII as \xHH; a value cut short at outlen ends
 * in "...". log_addr writes <addr> the same way. LOG_VALUE_MAX holds any SMTP path.
 * Both return out. (log_msg itself turns any CR or LF into a space: one event, one line.)
 */
#define LOG_VALUE_MAX 1200
const char *log_value(char *out, size_t outlen, const char *in, size_t len);
const char *log_addr(char *out, size_t outlen, const char *addr);

/* Parse "error|warn|info|debug"; -1 when unknown. */
int log_level_parse(const char *s);
const char *log_level_name(int lvl);

#endif
