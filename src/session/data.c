/*
 * data — the message text of a transaction, by DATA or by BDAT chunks: our Received header
 * first, the line rules (proto/smtp_body), hop counting, the Authentication-Results filter,
 * message_size_limit, and the hand-over to the queue. See session.h for the contract.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/msghdr.h"
#include "session/session_int.h"
#include "util/log.h"
#include "util/str.h"

/* RFC 5322 date in UTC for the Received header. Pure apart from gmtime_r. */
static void
rfc5322_date(time_t t, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* Gather body bytes; one tx_write per BODY_CHUNK. */
void
ss_body_flush(struct session *s)
{
	if (s->chunklen == 0)
		return;
	if (s->tx.err == DERR_NONE) {
		int r = s->ops->tx_write(s->arg, s->chunk, s->chunklen);
		if (r < 0)
			s->tx.err = r == SESSION_WRITE_NOSPACE ? DERR_NOSPACE : DERR_WRITE;
	}
	s->chunklen = 0;
}

/* Count "Received:" lines of the header section as they are stored (RFC 5321 §6.3). */
static void
hdr_track(struct session *s, const char *p, size_t n)
{
	static const char rcvd[] = "received:";

	for (size_t i = 0; i < n && s->in_headers; i++) {
		char c = p[i];
		if (s->hdr_crbol) {
			s->hdr_crbol = 0;
			if (c == '\n') {
				s->in_headers = 0;	/* CRLF alone: the body starts */
				break;
			}
			/* a bare CR opening a line is content, not the end of the header */
		}
		if (c == '\n') {
			s->hdr_lpos = 0;
			s->hdr_match = 1;
			continue;
		}
		if (s->hdr_lpos == 0 && c == '\r') {
			s->hdr_crbol = 1;
			s->hdr_match = 0;
			s->hdr_lpos++;
			continue;
		}
		if (s->hdr_lpos < 9 && s->hdr_match &&
		    tolower((unsigned char)c) != rcvd[s->hdr_lpos])
			s->hdr_match = 0;
		if (++s->hdr_lpos == 9 && s->hdr_match && ++s->hops > SESSION_HOPS_MAX &&
		    s->tx.err == DERR_NONE)
			s->tx.err = DERR_HOPS;
	}
}

static inline void
body_store(struct session *s, const char *p, size_t n)
{
	if (s->tx.err != DERR_NONE)
		return;
	s->tx.size += n;
	if (s->tx.size > s->conf->message_size_limit + s->tx.own) {
		s->tx.err = DERR_SIZE;
		return;
	}
	/* A BDAT run can be longer than the buffer: fill, write, repeat. */
	while (n > 0) {
		size_t k = BODY_CHUNK - s->chunklen;
		if (k > n)
			k = n;
		memcpy(s->chunk + s->chunklen, p, k);
		s->chunklen += k;
		p += k;
		n -= k;
		if (s->chunklen == BODY_CHUNK)
			ss_body_flush(s);
	}
}

/* A header byte that is kept: hop counting, then the store. */
static inline void
hdr_emit(struct session *s, const char *p, size_t n)
{
	hdr_track(s, p, n);
	body_store(s, p, n);
}

/*
 * RFC 8601 5: an Authentication-Results field from outside that claims our authserv-id
 * (the hostname) would pass for our verdict, so it is removed before the message is
 * stored. Such a field is held whole (continuation lines included, up to
 * SESSION_AR_HOLD_MAX bytes, past which it is dropped unread) until its end shows whose
 * it is; every other field passes through as it comes.
 */
enum hf_mode { HF_NAME, HF_PASS, HF_HOLD, HF_DROP };
static const char ar_name[] = "authentication-results";

/*
 * Does the Authentication-Results value v name us as its authserv-id? Our hostname in any
 * case, with or without a final dot (mx.example. is the same name). A field whose id
 * cannot be read at all (an unterminated comment first, only comments, nothing) counts as
 * ours too: a reader downstream that is more lenient might find our name in it, and a
 * field that names nobody readable is no loss.
 */
static int
ar_claims_us(const struct session *s, const char *v, size_t len)
{
	char id[256];
	size_t n, h = strlen(s->conf->hostname);

	if (mhdr_authserv_id(v, len, id, sizeof(id)) < 0)
		return 1;
	n = strlen(id);
	if (n > 0 && id[n - 1] == '.')
		id[--n] = '\0';
	if (h > 0 && s->conf->hostname[h - 1] == '.')
		h--;
	return n == h && strncasecmp(id, s->conf->hostname, h) == 0;
}

static void
hf_finish(struct session *s)
{
	const char *colon;

	if (s->hf_mode == HF_DROP) {
		s->ar_removed++;
	} else if (s->hf_mode == HF_HOLD && s->hf_hold != NULL) {
		colon = memchr(s->hf_hold, ':', s->hf_holdlen);
		if (colon != NULL && ar_claims_us(s, colon + 1, s->hf_holdlen -
		    (size_t)(colon + 1 - s->hf_hold)))
			s->ar_removed++;
		else
			hdr_emit(s, s->hf_hold, s->hf_holdlen);
	} else if (s->hf_mode == HF_NAME && s->hf_nlen > 0)
		hdr_emit(s, s->hf_name, s->hf_nlen);
	s->hf_nmatch = 0;
	s->hf_crbol = 0;
	free(s->hf_hold);
	s->hf_hold = NULL;
	s->hf_holdlen = 0;
	s->hf_nlen = 0;
	s->hf_mode = HF_PASS;
}

static void
hf_hold_add(struct session *s, const char *p, size_t n)
{
	if (s->hf_mode == HF_DROP)
		return;
	if (s->hf_hold == NULL && (s->hf_hold = malloc(SESSION_AR_HOLD_MAX)) == NULL) {
		s->hf_mode = HF_DROP;
		return;
	}
	if (s->hf_holdlen + n > SESSION_AR_HOLD_MAX) {
		free(s->hf_hold);
		s->hf_hold = NULL;
		s->hf_holdlen = 0;
		s->hf_mode = HF_DROP;
		return;
	}
	memcpy(s->hf_hold + s->hf_holdlen, p, n);
	s->hf_holdlen += n;
}

static void
hdr_filter(struct session *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (s->hf_crbol) {
			s->hf_crbol = 0;
			if (c == '\n') {
				/* CRLF alone: the end of the header; the rest is body */
				hdr_emit(s, s->hf_name, s->hf_nlen);
				s->hf_nlen = s->hf_nmatch = 0;
				s->hf_mode = HF_PASS;
				hdr_emit(s, p + i, 1);
				if (i + 1 < n) {
					if (s->in_headers)	/* cannot be: hdr_track saw the CRLF */
						hdr_filter(s, p + i + 1, n - i - 1);
					else
						body_store(s, p + i + 1, n - i - 1);
				}
				return;
			}
			/* a bare CR opening a line: kept in hf_name, the name matched after it */
		} else if (s->hf_bol) {
			s->hf_bol = 0;
			if (c != ' ' && c != '\t') {
				hf_finish(s);		/* the previous field ended */
				s->hf_mode = HF_NAME;
				s->hf_nlen = s->hf_nmatch = 0;
				if (c == '\r') {
					s->hf_name[s->hf_nlen++] = c;
					s->hf_crbol = 1;
					continue;
				}
			}
		}
		switch (s->hf_mode) {
		case HF_NAME:
			if (s->hf_nmatch == sizeof(ar_name) - 1 && (c == ':' || c == ' ' || c == '\t')) {
				/* the whole name ("Name:", or "Name" then spaces, RFC 5322 4.5.8):
				 * held to the field's end, where its authserv-id decides */
				hf_hold_add(s, s->hf_name, s->hf_nlen);
				hf_hold_add(s, &c, 1);
				s->hf_nlen = s->hf_nmatch = 0;
				if (s->hf_mode != HF_DROP)
					s->hf_mode = HF_HOLD;
			} else if (s->hf_nmatch < sizeof(ar_name) - 1 &&
			    tolower((unsigned char)c) == ar_name[s->hf_nmatch] &&
			    s->hf_nlen < sizeof(s->hf_name)) {
				s->hf_name[s->hf_nlen++] = c;
				s->hf_nmatch++;
			} else {
				hdr_emit(s, s->hf_name, s->hf_nlen);
				s->hf_nlen = s->hf_nmatch = 0;
				hdr_emit(s, &c, 1);
				s->hf_mode = HF_PASS;
			}
			break;
		case HF_PASS:
			hdr_emit(s, &c, 1);
			break;
		case HF_HOLD:
		case HF_DROP:
			hf_hold_add(s, &c, 1);
			break;
		}
		if (c == '\n')
			s->hf_bol = 1;
	}
}

static inline void
body_put(struct session *s, const char *p, size_t n)
{
	if (s->in_headers)
		hdr_filter(s, p, n);
	else
		body_store(s, p, n);
}

/* The decoder's outputs: text to store, and a line past the limit. */
static void
dec_put(void *arg, const char *p, size_t n)
{
	body_put(arg, p, n);
}

static void
dec_toolong(void *arg)
{
	struct session *s = arg;

	if (s->tx.err == DERR_NONE)
		s->tx.err = DERR_LINE;
}

/*
 * Open the spool file of the transaction and store our Received header: the start of
 * the message text, for DATA and for the first BDAT chunk alike. 0 ok; -1 the spool file
 * cannot be opened (logged; the caller replies 451). dots: DATA (1) or BDAT text (0).
 */
static int
body_begin(struct session *s, int dots)
{
	char date[64], hdr[1400], rip[64], forq[SMTP_PATH_MAX + 8];
	const char *proto;
	int n;

	if ((s->chunk = malloc(BODY_CHUNK)) == NULL || s->ops->tx_open(s->arg, &s->tx) < 0) {
		ss_slog(s, LOG_ERROR, "event=queue-error stage=data reason=cannot-open-spool-file");
		free(s->chunk);
		s->chunk = NULL;
		return -1;
	}
	s->spool_open = 1;
	smtp_body_dec_init(&s->dec, dots, SESSION_TEXT_MAX - 2, dec_put, dec_toolong, s);
	s->in_headers = 1;
	s->hdr_lpos = 0;
	s->hdr_match = 1;
	s->hops = 0;
	s->hf_bol = 1;
	s->hf_mode = HF_PASS;
	s->hf_nlen = s->hf_nmatch = 0;
	s->hf_crbol = 0;
	s->hdr_crbol = 0;
	s->ar_removed = 0;

	/* RFC 5321 §4.4: the trace header goes first. */
	/* RFC 3848 protocol keywords: ESMTP, plus S for TLS and A for AUTH; UTF8SMTP and
	 * its S/A forms for an SMTPUTF8 transaction (RFC 6531 §3.7.3). */
	if (s->helo_kind != 2)
		proto = "SMTP";
	else if (s->tx.smtputf8 && s->tls)
		proto = s->auth_user[0] ? "UTF8SMTPSA" : "UTF8SMTPS";
	else if (s->tx.smtputf8)
		proto = s->auth_user[0] ? "UTF8SMTPA" : "UTF8SMTP";
	else if (s->tls)
		proto = s->auth_user[0] ? "ESMTPSA" : "ESMTPS";
	else
		proto = s->auth_user[0] ? "ESMTPA" : "ESMTP";
	rfc5322_date(s->now, date, sizeof(date));
	netaddr_str(&s->peer.remote, rip, sizeof(rip));
	/* The "for" clause carries the address as SMTP writes it: quoted when it must be. */
	if (s->tx.nrcpts != 1 || smtp_addr_requote(s->tx.rcpts[0].orcpt, forq, sizeof(forq)) < 0)
		forq[0] = '\0';
	if (s->kind == SL_LOCAL)
		/* local submission: no network peer; the user is who the kernel said */
		n = snprintf(hdr, sizeof(hdr),
		    "Received: by %s (imsd, from userid %ld)\r\n\twith local id %s%s%s%s;\r\n\t%s\r\n",
		    s->conf->hostname, s->peer.uid, s->tx.qid, forq[0] ? "\r\n\tfor <" : "", forq,
		    forq[0] ? ">" : "", date);
	else
		n = snprintf(hdr, sizeof(hdr),
		    "Received: from %s ([%s%s])\r\n\tby %s (imsd) with %s%s%s%s id %s%s%s%s;\r\n\t%s\r\n",
		    s->helo, s->peer.remote.family == AF_INET6 ? "IPv6:" : "", rip, s->conf->hostname,
		    proto, s->tls ? " (" : "", s->tls ? s->tls_desc : "", s->tls ? ")" : "",
		    s->tx.qid, forq[0] ? "\r\n\tfor <" : "", forq, forq[0] ? ">" : "", date);
	if (n > 0 && (size_t)n < sizeof(hdr)) {
		s->tx.own = (uint64_t)n;
		body_put(s, hdr, (size_t)n);
	}
	return 0;
}

void
ss_cmd_data(struct session *s, const char *args)
{
	if (s->bdat) {
		/* RFC 3030 §2: DATA and BDAT are never mixed in one transaction. */
		ss_reply(s, "503 5.5.1 Error: DATA not permitted in a BDAT transaction");
		ss_tx_clear(s);
		ss_error(s);
		return;
	}
	if (s->tx.body_binary) {
		/* RFC 3030 §3: BODY=BINARYMIME content can only come by BDAT. */
		ss_reply(s, "503 5.5.1 Error: BODY=BINARYMIME requires BDAT, not DATA");
		ss_error(s);
		return;
	}
	if (s->tx.nrcpts == 0) {
		ss_reply(s, "554 5.5.1 Error: no valid recipients");
		ss_error(s);
		return;
	}
	if (body_begin(s, 1) < 0) {
		ss_reply(s, "451 4.3.0 Local error in processing: cannot queue message now");
		return;
	}
	ss_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	s->state = SS_DATA;
}

/* The final dot arrived: hand over to the queue or refuse. */
static void
data_end(struct session *s)
{
	if (s->in_headers)
		hf_finish(s);	/* a message that is all header */
	if (s->ar_removed)
		ss_slog(s, LOG_INFO, "qid=%s event=ar-removed count=%u authserv_id=%s", s->tx.qid,
		    s->ar_removed, s->conf->hostname);
	ss_body_flush(s);
	free(s->chunk);
	s->chunk = NULL;
	switch (s->tx.err) {
	case DERR_NONE: {
		char lfrom[LOG_VALUE_MAX], luser[LOG_VALUE_MAX];
		s->state = SS_COMMIT;
		char luid[32] = "";
		if (s->kind == SL_LOCAL)
			snprintf(luid, sizeof(luid), " uid=%ld", s->peer.uid);
		ss_slog(s, LOG_INFO, "qid=%s event=received from=%s nrcpt=%zu size=%llu tls=%s%s%s%s",
		    s->tx.qid, log_addr(lfrom, sizeof(lfrom), s->tx.sender), s->tx.nrcpts,
		    (unsigned long long)s->tx.size, s->tls ? "yes" : "no",
		    s->auth_user[0] ? " auth=" : "", s->auth_user[0] ?
		    log_value(luser, sizeof(luser), s->auth_user, strlen(s->auth_user)) : "", luid);
		s->spool_open = 0;	/* the commit owns it now */
		s->ops->tx_commit(s->arg, &s->tx);
		return;
	}
	case DERR_SIZE:
		ss_slog(s, LOG_INFO, "qid=%s event=reject stage=data reason=size limit=%llu", s->tx.qid,
		    (unsigned long long)s->conf->message_size_limit);
		ss_reply(s, "552 5.3.4 Message size exceeds fixed limit of %llu bytes",
		    (unsigned long long)s->conf->message_size_limit);
		break;
	case DERR_HOPS:
		ss_slog(s, LOG_WARN, "qid=%s event=reject stage=data reason=mail-loop hops=%u", s->tx.qid,
		    s->hops);
		ss_reply(s, "554 5.4.6 Too many hops: more than %d Received headers; mail loop?",
		    SESSION_HOPS_MAX);
		break;
	case DERR_LINE:
		ss_slog(s, LOG_INFO, "qid=%s event=reject stage=data reason=line-too-long", s->tx.qid);
		ss_reply(s, "500 5.5.6 Message rejected: a text line exceeds %d octets "
		    "(RFC 5321 4.5.3.1.6)", SESSION_TEXT_MAX);
		break;
	case DERR_NOSPACE:
		ss_slog(s, LOG_WARN, "qid=%s event=reject stage=data status=4.3.1 reason=spool-full",
		    s->tx.qid);
		ss_reply(s, "452 4.3.1 Insufficient system storage; message not accepted, try again "
		    "later");
		break;
	default:
		ss_slog(s, LOG_ERROR, "qid=%s event=queue-error stage=data reason=write-failed",
		    s->tx.qid);
		ss_reply(s, "451 4.3.0 Local error in processing: cannot queue message now");
		break;
	}
	ss_spool_abort(s);
	ss_tx_clear(s);
	s->state = SS_CMD;
}

/*
 * Scan DATA bytes. Returns the bytes consumed; stops right after the final <CR><LF> of
 * <CR><LF>.<CR><LF> (state changes away from SS_DATA). See session.h for the rules; the
 * line machine is proto/smtp_body's.
 */
size_t
ss_body_scan(struct session *s, const char *buf, size_t len)
{
	int end;
	size_t n = smtp_body_decode(&s->dec, buf, len, &end);

	if (end)
		data_end(s);
	return n;
}

/* ---- BDAT (RFC 3030 CHUNKING, BINARYMIME) ----
 *
 * "BDAT <size> [LAST]" is followed by exactly <size> octets, read whatever they hold:
 * they are never looked at as commands, and no sequence in them ends anything (no dot
 * and no dot-unstuffing). The chunk is streamed through the same path as DATA text
 * (Received header first, hop counting, the Authentication-Results filter,
 * message_size_limit counted across all chunks), BODY_CHUNK bytes at a time, so a
 * client announcing a huge chunk costs no memory. The state is SS_DATA while a chunk
 * is read (the server applies data_timeout), SS_CMD between chunks with the spool file
 * open, and SS_COMMIT after LAST: the message goes through tx_commit like DATA and its
 * 250 comes only from session_commit_done.
 *
 * Line endings. BODY=BINARYMIME content is stored exactly as sent (bare CR and LF
 * included, no line length limit). For a 7bit or 8BITMIME body RFC 3030 §2 still
 * requires CRLF lines of at most 1000 octets; imsd applies the DATA rules to it: the line
 * limit, a bare LF stored as CRLF (SPEC: line endings), a bare CR kept as content, and a
 * text that does not end with a line break gets one. That keeps every non-binary spool
 * file in the CRLF form that local delivery and relaying with DATA rely on.
 *
 * Refusals. A BDAT that cannot be accepted (no MAIL or RCPT, bad LAST argument, spool
 * error) still has its chunk read and discarded; its reply comes after the chunk, and a
 * transaction in progress is dropped (RFC 3030 §2: further pipelined chunks get 503). A
 * chunk size that is not 1 to BDAT_SIZE_DIGITS digits leaves no way to find the chunk's
 * end: 501 and the session closes.
 */
#define BDAT_SIZE_DIGITS	19	/* 9999999999999999999 still fits in a uint64_t */

/* The chunk's last octet was read: reply for it, or hand the message to the commit. */
static void
bdat_chunk_end(struct session *s)
{
	s->bdat_chunk = 0;
	if (s->bdat_refusal[0] != '\0') {
		char text[sizeof(s->bdat_refusal)];
		memcpy(text, s->bdat_refusal, sizeof(text));
		s->bdat_refusal[0] = '\0';
		ss_tx_clear(s);
		s->state = SS_CMD;
		ss_reply(s, "%s", text);
		if (text[0] == '5')
			ss_error(s);
		return;
	}
	if (!s->bdat_last) {
		ss_body_flush(s);
		if (s->tx.err == DERR_NONE) {
			s->state = SS_CMD;
			ss_reply(s, "250 2.0.0 %llu octets received", (unsigned long long)s->bdat_octets);
			if (s->bdat_octets == 0)
				ss_junk(s);	/* "BDAT 0" moves nothing: a NOOP */
			return;
		}
	} else if (!s->tx.body_binary && s->tx.err == DERR_NONE)
		smtp_body_decode_finish(&s->dec);
	data_end(s);	/* the error's reply, or tx_commit (SS_COMMIT) */
}

/* Read chunk octets; returns how many were used (at most the chunk's rest). */
size_t
ss_bdat_scan(struct session *s, const char *buf, size_t len)
{
	size_t n = len < s->bdat_left ? len : (size_t)s->bdat_left;

	if (s->bdat_refusal[0] == '\0' && s->tx.err == DERR_NONE) {
		int end;
		if (s->tx.body_binary)
			body_put(s, buf, n);
		else
			(void)smtp_body_decode(&s->dec, buf, n, &end);
	}
	s->bdat_left -= n;
	if (s->bdat_left == 0)
		bdat_chunk_end(s);
	return n;
}

static void
bdat_refuse(struct session *s, const char *text)
{
	str_copy(s->bdat_refusal, sizeof(s->bdat_refusal), text);
}

void
ss_cmd_bdat(struct session *s, const char *args)
{
	const char *p = args;
	uint64_t size = 0;
	size_t nd = 0;
	int last = 0;

	while (isdigit((unsigned char)*p) && nd <= BDAT_SIZE_DIGITS) {
		size = size * 10 + (uint64_t)(*p - '0');
		p++;
		nd++;
	}
	if (nd == 0 || nd > BDAT_SIZE_DIGITS || (*p != '\0' && *p != ' ')) {
		ss_slog(s, LOG_INFO, "event=bad-input reason=bdat-chunk-size");
		ss_close(s, "501 5.5.4 Syntax: BDAT chunk-size [LAST]: bad chunk size, the "
		    "chunk's end cannot be found; closing connection");
		return;
	}
	while (*p == ' ')
		p++;
	s->bdat_refusal[0] = '\0';
	if (*p != '\0') {
		if (strcasecmp(p, "LAST") == 0)
			last = 1;
		else
			bdat_refuse(s, "501 5.5.4 Syntax: BDAT chunk-size [LAST]");
	}
	if (s->bdat_refusal[0] != '\0')
		;
	else if (s->helo_kind != 2)
		bdat_refuse(s, "503 5.5.1 Error: send EHLO first (CHUNKING is an ESMTP extension)");
	else if (!s->in_tx)
		bdat_refuse(s, "503 5.5.1 Error: need MAIL command");
	else if (s->tx.nrcpts == 0)
		bdat_refuse(s, "503 5.5.1 Error: need RCPT command");
	else if (!s->bdat) {
		if (body_begin(s, 0) < 0)
			bdat_refuse(s, "451 4.3.0 Local error in processing: cannot queue message now");
		else
			s->bdat = 1;
	}
	s->state = SS_DATA;
	s->bdat_chunk = 1;
	s->bdat_last = last;
	s->bdat_left = size;
	s->bdat_octets = size;
	if (size == 0)
		bdat_chunk_end(s);
}

