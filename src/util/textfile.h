/*
 * textfile — reading the line-oriented files imsd is given (recipients_file,
 * auth_users_file): one reader, one line splitter, so both files follow the same rules.
 *
 * Lines end in LF or CRLF. A '#' at the start of a line or after a blank (space, tab)
 * starts a comment. Lines are trimmed of blanks; empty lines are skipped. A NUL byte is
 * an error. PURE apart from textfile_read.
 */
#ifndef IMSD_TEXTFILE_H
#define IMSD_TEXTFILE_H

#include <stddef.h>

/* Read all of path (at most max bytes) into a malloc'd buffer. 0 ok; -1 with
 * "PATH: cannot read: why" in err. *out may be NULL when the file is empty. */
int textfile_read(const char *path, size_t max, char **out, size_t *len, char *err,
    size_t errlen);

struct textlines {
	const char *text;
	size_t len, pos;
	unsigned lineno;	/* of the line last returned */
	char *buf;		/* the current line, owned */
	size_t cap;
};

void textlines_init(struct textlines *t, const char *text, size_t len);
/* The next meaningful line (comment removed, trimmed, not empty) in *line, valid until
 * the next call. 1 a line, 0 the end, -1 an error (*why: "NUL byte in line", "out of
 * memory"; t->lineno names the line). */
int textlines_next(struct textlines *t, char **line, const char **why);
/* Free the line buffer (wiped first: it may have held a password hash). */
void textlines_free(struct textlines *t);

#endif
