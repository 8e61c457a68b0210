/*
 * milter — the Sendmail mail filter protocol, version 6, as the MTA speaks it: a pure codec.
 *
 * PURE: no I/O, no clock, no globals. Encoders append packets to a struct sbuf; decoders
 * read packets out of the caller's buffer and point into it (nothing is allocated, nothing
 * in the buffer is changed); the checks return a constant string saying what is wrong.
 *
 * Wire format (libmilter's mfdef.h and Postfix's milter8.c agree on it): every packet is
 *
 *   uint32 len (network order)  |  char cmd  |  len - 1 bytes of data
 *
 * Strings in the data are NUL-terminated; numbers are uint32 in network order (the port of
 * SMFIC_CONNECT is a uint16). The MTA sends commands (SMFIC_*), the milter answers with
 * replies (SMFIR_*). A packet of length 0 or longer than the caller's bound is a protocol
 * error: the connection to that milter is then useless (its default action applies).
 *
 * Conversation, per SMTP connection (the MTA decides what to send from the negotiation):
 *   OPTNEG -> OPTNEG reply (version, actions the milter may take, steps it skips, and the
 *   macro names it wants at each stage); then per stage [MACRO] CONNECT, [MACRO] HELO,
 *   [MACRO] MAIL, [MACRO] RCPT (each recipient), [MACRO] DATA, HEADER (each field), [MACRO]
 *   EOH, BODY (chunks of at most MILTER_CHUNK_MAX bytes), [MACRO] BODYEOB; ABORT ends a
 *   message early, QUIT ends the conversation (QUIT_NC: ends it but keeps the connection
 *   for the next one). Every command except MACRO, ABORT, QUIT and QUIT_NC is answered
 *   unless the milter asked for no reply (SMFIP_NR_*); PROGRESS replies may come first.
 *   After BODYEOB the milter may send edits (headers, body, recipients, sender,
 *   quarantine) before its final reply.
 */
#ifndef IMSD_MILTER_H
#define IMSD_MILTER_H

#include <stddef.h>
#include <stdint.h>

#include "util/sbuf.h"

#define MILTER_VERSION		6	/* the protocol version imsd offers */
#define MILTER_VERSION_MIN	2	/* the oldest version a milter may answer with */
#define MILTER_CHUNK_MAX	65535	/* body bytes in one SMFIC_BODY (libmilter's buffer) */
#define MILTER_PACKET_MAX	(1024 * 1024 + 64)	/* the largest reply imsd reads: the
					 * biggest libmilter sends (SMFIP_MDS_1M), with room */
#define MILTER_REPLY_LINES_MAX	32	/* lines of a SMFIR_REPLYCODE (libmilter's MAXREPLIES) */
#define MILTER_REPLY_LINE_MAX	998	/* octets of one such line, without its CRLF */
#define MILTER_REPLY_TEXT_MAX	4096	/* its text as kept (with the NUL) */
#define MILTER_HEADER_NAME_MAX	998	/* a header field name a milter may add or change */
#define MILTER_HEADER_VALUE_MAX	(64 * 1024)	/* and its value, folding included */

/* Commands, MTA to milter. */
#define SMFIC_ABORT	'A'
#define SMFIC_BODY	'B'
#define SMFIC_CONNECT	'C'
#define SMFIC_MACRO	'D'
#define SMFIC_BODYEOB	'E'
#define SMFIC_HELO	'H'
#define SMFIC_QUIT_NC	'K'
#define SMFIC_HEADER	'L'
#define SMFIC_MAIL	'M'
#define SMFIC_EOH	'N'
#define SMFIC_OPTNEG	'O'
#define SMFIC_QUIT	'Q'
#define SMFIC_RCPT	'R'
#define SMFIC_DATA	'T'
#define SMFIC_UNKNOWN	'U'

/* Replies, milter to MTA. */
#define SMFIR_ADDRCPT		'+'
#define SMFIR_DELRCPT		'-'
#define SMFIR_ADDRCPT_PAR	'2'
#define SMFIR_SHUTDOWN		'4'
#define SMFIR_ACCEPT		'a'
#define SMFIR_REPLBODY		'b'
#define SMFIR_CONTINUE		'c'
#define SMFIR_DISCARD		'd'
#define SMFIR_CHGFROM		'e'
#define SMFIR_CONN_FAIL		'f'
#define SMFIR_ADDHEADER		'h'
#define SMFIR_INSHEADER		'i'
#define SMFIR_SETSYMLIST	'l'
#define SMFIR_CHGHEADER		'm'
#define SMFIR_PROGRESS		'p'
#define SMFIR_QUARANTINE	'q'
#define SMFIR_REJECT		'r'
#define SMFIR_SKIP		's'
#define SMFIR_TEMPFAIL		't'
#define SMFIR_REPLYCODE		'y'
#define SMFIR_OPTNEG		'O'	/* the answer to SMFIC_OPTNEG */

/* Actions a milter may take (the second word of OPTNEG). */
#define SMFIF_ADDHDRS		0x001u	/* add (and insert) header fields */
#define SMFIF_CHGBODY		0x002u	/* replace the body */
#define SMFIF_ADDRCPT		0x004u	/* add recipients */
#define SMFIF_DELRCPT		0x008u	/* delete recipients */
#define SMFIF_CHGHDRS		0x010u	/* change or delete header fields */
#define SMFIF_QUARANTINE	0x020u	/* quarantine the message */
#define SMFIF_CHGFROM		0x040u	/* change the envelope sender */
#define SMFIF_ADDRCPT_PAR	0x080u	/* add recipients with ESMTP parameters */
#define SMFIF_SETSYMLIST	0x100u	/* ask for macro lists in OPTNEG */
#define SMFIF_ALL		0x1ffu

/* Protocol steps (the third word of OPTNEG): what the milter does not want sent, and where
 * it will not reply. */
#define SMFIP_NOCONNECT		0x00000001u
#define SMFIP_NOHELO		0x00000002u
#define SMFIP_NOMAIL		0x00000004u
#define SMFIP_NORCPT		0x00000008u
#define SMFIP_NOBODY		0x00000010u
#define SMFIP_NOHDRS		0x00000020u
#define SMFIP_NOEOH		0x00000040u
#define SMFIP_NR_HDR		0x00000080u
#define SMFIP_NOUNKNOWN		0x00000100u
#define SMFIP_NODATA		0x00000200u
#define SMFIP_SKIP		0x00000400u	/* the MTA understands SMFIR_SKIP */
#define SMFIP_RCPT_REJ		0x00000800u	/* the milter wants rejected recipients too */
#define SMFIP_NR_CONN		0x00001000u
#define SMFIP_NR_HELO		0x00002000u
#define SMFIP_NR_MAIL		0x00004000u
#define SMFIP_NR_RCPT		0x00008000u
#define SMFIP_NR_DATA		0x00010000u
#define SMFIP_NR_UNKN		0x00020000u
#define SMFIP_NR_EOH		0x00040000u
#define SMFIP_NR_BODY		0x00080000u
#define SMFIP_HDR_LEADSPC	0x00100000u	/* header values keep their leading space */
#define SMFIP_DEFINED		0x001fffffu	/* every step flag of version 6 */
#define SMFIP_MDS_256K		0x10000000u	/* libmilter's buffer sizes: not steps */
#define SMFIP_MDS_1M		0x20000000u

/* Address families of SMFIC_CONNECT. */
#define SMFIA_UNKNOWN	'U'
#define SMFIA_UNIX	'L'
#define SMFIA_INET	'4'
#define SMFIA_INET6	'6'

/* Macro stages (SMFIM_*), the numbers of the OPTNEG macro lists. */
enum milter_stage {
	MILTER_STAGE_CONNECT = 0,
	MILTER_STAGE_HELO = 1,
	MILTER_STAGE_MAIL = 2,
	MILTER_STAGE_RCPT = 3,
	MILTER_STAGE_DATA = 4,
	MILTER_STAGE_EOM = 5,
	MILTER_STAGE_EOH = 6,
	MILTER_STAGES = 7
};

/* The command letter whose macros a stage's SMFIC_MACRO carries. */
char milter_stage_cmd(enum milter_stage st);

/* ---- encoding (MTA -> milter) ----
 * Each appends one complete packet to b (b->bad is set when memory ran out; check once at
 * the end). Strings are sent up to their NUL. */

/* SMFIC_OPTNEG: the version, the actions the milter may take, the steps it may skip. */
void milter_put_optneg(struct sbuf *b, uint32_t version, uint32_t actions, uint32_t protocol);
/* SMFIC_MACRO for the command cmd: n name/value pairs, nv[2i] the name ("j", "{client_addr}"),
 * nv[2i+1] its value. Nothing is appended when n is 0. */
void milter_put_macros(struct sbuf *b, char cmd, const char *const *nv, size_t n);
/* SMFIC_CONNECT: the client's host name, the family (SMFIA_*), and for SMFIA_INET/INET6/UNIX
 * the port and address ("192.0.2.1", "2001:db8::1", a socket path); SMFIA_UNKNOWN sends only
 * the host name and the family. */
void milter_put_connect(struct sbuf *b, const char *host, char family, uint16_t port,
    const char *addr);
void milter_put_helo(struct sbuf *b, const char *helo);
/* SMFIC_MAIL / SMFIC_RCPT: argv[0] the path in angle brackets ("<a@b.example>"), then the
 * ESMTP parameters ("SIZE=1000"). */
void milter_put_args(struct sbuf *b, char cmd, const char *const *argv, size_t argc);
/* SMFIC_HEADER: the field name and its value (folded lines joined by "\n" + the fold's
 * whitespace, no CR). */
void milter_put_header(struct sbuf *b, const char *name, const char *value);
/* SMFIC_BODY: 1 to MILTER_CHUNK_MAX bytes of the body, CRLF lines. -1 (nothing appended)
 * for 0 bytes or more than MILTER_CHUNK_MAX. */
int milter_put_body(struct sbuf *b, const void *data, size_t len);
/* SMFIC_UNKNOWN: an SMTP command the MTA did not recognise. */
void milter_put_unknown(struct sbuf *b, const char *line);
/* A command without data: SMFIC_DATA, SMFIC_EOH, SMFIC_BODYEOB, SMFIC_ABORT, SMFIC_QUIT,
 * SMFIC_QUIT_NC. */
void milter_put_cmd(struct sbuf *b, char cmd);

/* ---- decoding (milter -> MTA) ---- */

struct milter_packet {
	char cmd;
	const unsigned char *data;	/* into the caller's buffer */
	size_t len;			/* bytes of data (the packet's length - 1) */
};

/*
 * Frame one packet from the start of buf (len bytes received so far).
 *   1  a whole packet: *pkt filled, *used = its size on the wire (4 + length);
 *   0  not yet complete: *used = the bytes the whole packet needs when its length is known
 *      (so the caller can tell whether its buffer will hold it), else 0;
 *  -1  a length of 0 or above max: *why says so.
 */
int milter_frame(const unsigned char *buf, size_t len, size_t max, struct milter_packet *pkt,
    size_t *used, const char **why);

/* The milter's answer to SMFIC_OPTNEG. */
struct milter_optneg {
	uint32_t version, actions, protocol;
	/* Macro names the milter wants per stage (space-separated, "{client_addr} i"), pointing
	 * into the packet; NULL where it sent none (the MTA's default list applies). */
	const char *macros[MILTER_STAGES];
	unsigned unknown_stages;	/* macro lists for stages that do not exist (ignored) */
};

/* Decode an SMFIR_OPTNEG packet. 0 ok; -1 with *why (short, a string not NUL-terminated,
 * a trailing partial field). */
int milter_optneg_decode(const struct milter_packet *pkt, struct milter_optneg *out,
    const char **why);

/* What both sides agreed on. */
struct milter_agreed {
	uint32_t version;
	uint32_t actions;	/* the actions the milter may take */
	uint32_t protocol;	/* the steps it skips and the replies it will not send */
	uint32_t nosend;	/* steps its version does not know (never sent to it) */
};

/*
 * Check the milter's answer against what the MTA offered (my_actions, my_protocol) and fill
 * *out. Errors (-1, *why): a version outside MILTER_VERSION_MIN..MILTER_VERSION, an action
 * not offered, a step flag not offered. Bits above SMFIP_DEFINED (libmilter's buffer sizes)
 * are ignored. A version below 4 is not sent SMFIC_DATA, below 3 not SMFIC_UNKNOWN either.
 */
int milter_negotiate(uint32_t my_actions, uint32_t my_protocol, const struct milter_optneg *r,
    struct milter_agreed *out, const char **why);

/* 1 when the command cmd is to be sent to the milter at all, 0 when it asked to skip it (or
 * its version does not know it). SMFIC_MACRO, SMFIC_BODYEOB, SMFIC_ABORT and SMFIC_QUIT are
 * always sent. */
int milter_sends(const struct milter_agreed *a, char cmd);
/* 1 when the milter answers the command cmd (once sent), 0 when it said it would not
 * (SMFIP_NR_*) or the command has no answer (MACRO, ABORT, QUIT, QUIT_NC). */
int milter_replies(const struct milter_agreed *a, char cmd);

/* A reply decoded. Strings point into the packet (they are NUL-terminated there). */
struct milter_reply {
	char cmd;			/* SMFIR_* */
	uint32_t index;			/* INSHEADER, CHGHEADER: as sent */
	const char *name;		/* header name; recipient; sender; quarantine reason */
	const char *value;		/* header value; ESMTP parameters (NULL when none) */
	const unsigned char *body;	/* REPLBODY: this chunk of the new body */
	size_t bodylen;
	/* REPLYCODE, checked and normalised: */
	int code;			/* 421..554 (4xx or 5xx) */
	char enh[16];			/* the enhanced status code of its first line, or "" */
	unsigned nlines;
	char text[MILTER_REPLY_TEXT_MAX];	/* each line's text after the code and its
					 * separator, lines joined by '\n'; bytes outside
					 * printable ASCII (TAB kept) replaced by '?', "%%" as "%" */
};

/*
 * Decode a reply packet into *out (by its command letter; SMFIR_OPTNEG has its own
 * decoder). 0 ok; -1 with *why: an unknown letter, data where none belongs, a string not
 * NUL-terminated, a header name that is not a field name or a value whose line breaks do
 * not fold (header injection), a REPLYCODE that is not a 4xx/5xx SMTP reply (every line the
 * same code, '-' on all lines but the last, an enhanced code of the reply's class).
 */
int milter_reply_decode(const struct milter_packet *pkt, struct milter_reply *out,
    const char **why);

/* Is the reply letter r acceptable after the command cmd, under agreement a? (PROGRESS
 * after any answered command; DISCARD not after CONNECT or HELO; SKIP only after BODY and
 * when SMFIP_SKIP was agreed; edits only after BODYEOB and only those whose SMFIF_* action
 * was agreed.) 1 yes, 0 no (a protocol violation: the milter's default action applies). */
int milter_reply_allowed(const struct milter_agreed *a, char cmd, char r);

/* Is r a final answer to its command (accept, continue, reject, tempfail, discard,
 * replycode, skip, shutdown), rather than PROGRESS or an edit that comes before one? */
int milter_reply_final(char r);

/*
 * Write the header field as it goes into the message: "name: value\r\n" (no space added
 * when leadspc, i.e. SMFIP_HDR_LEADSPC was agreed and the value brings its own), each "\n"
 * or "\r\n" of the value as "\r\n". The value must have passed milter_reply_decode.
 */
void milter_header_format(struct sbuf *b, const char *name, const char *value, int leadspc);

#endif
