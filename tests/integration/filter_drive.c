/*
 * filter_drive — imsd's own milter and policy protocol code (proto/milter, milter_conv,
 * policyd, net/policyc) driving a real filter, for test_filter_protocols.py; built by that
 * test from the sources.
 *
 *   filter_drive milter PORT SUBJECT [BODYFILE]   one message through every stage; prints
 *                                                  each step's verdict and each edit
 *   filter_drive policy PORT RECIPIENT             one RCPT request; prints the reply line
 *                                                  or "accept", and each PREPEND
 *
 * Blocking, every wait bounded (10 s); 127.0.0.1 only.
 */
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "net/policyc.h"
#include "proto/milter_conv.h"
#include "proto/policyd.h"

static int fd;
static struct milter_conv C;
static unsigned char in[2 * 1024 * 1024];
static size_t inlen;

static const char *macro(void *arg, const char *n)
{
	if (!strcmp(n, "j")) return "mx.imsd.test";
	if (!strcmp(n, "{client_addr}")) return "127.0.0.1";
	if (!strcmp(n, "i")) return "QID0001";
	if (!strcmp(n, "{mail_addr}")) return "a@example.org";
	if (!strcmp(n, "{rcpt_addr}")) return "bob@localhost";
	if (!strcmp(n, "{daemon_name}")) return "imsd";
	return NULL;
}

static void flush(void)
{
	size_t n; const void *p = milter_conv_out(&C, &n);
	if (n) { if (write(fd, p, n) != (ssize_t)n) perror("write"); milter_conv_sent(&C, n); }
}

/* A value on one line: "\n" and "\t" written as such. */
static void put_escaped(const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\n')
			fputs("\\n", stdout);
		else if (*s == '\t')
			fputs("\\t", stdout);
		else if (*s == '\r')
			fputs("\\r", stdout);
		else
			putchar(*s);
	}
}

static int wait_ms = 10000;

static const char *vname(enum milter_verdict v)
{
	static const char *n[] = { "continue", "accept", "reject", "tempfail", "discard", "shutdown", "error" };
	return n[v];
}

static void step(const char *name, enum milter_step s)
{
	flush();
	if (s == MILTER_STEP_GO) { printf("%-8s go\n", name); return; }
	for (;;) {
		size_t used;
		struct milter_event e = milter_conv_feed(&C, in, inlen, &used);
		if (e.kind == MILTER_EV_NEED) {
			struct pollfd p = { fd, POLLIN, 0 };
			ssize_t r;
			if (poll(&p, 1, wait_ms) <= 0) { e = milter_conv_fail(&C, "timeout"); printf("%-8s %s (%s)\n", name, vname(e.verdict), e.why); return; }
			r = read(fd, in + inlen, sizeof in - inlen);
			if (r <= 0) { e = milter_conv_fail(&C, "EOF"); printf("%-8s %s (%s)\n", name, vname(e.verdict), e.why); return; }
			inlen += (size_t)r;
			continue;
		}
		if (e.kind == MILTER_EV_EDIT) {
			printf("%-8s edit %c %u ", name, e.reply->cmd, (unsigned)e.reply->index);
			put_escaped(e.reply->name);
			if (e.reply->value) {
				printf(" = ");
				put_escaped(e.reply->value);
			}
			if (e.reply->cmd == SMFIR_REPLBODY) {
				printf("[");
				for (size_t i = 0; i < e.reply->bodylen; i++)
					putchar(e.reply->body[i] == '\r' ? '~' : e.reply->body[i] == '\n' ? '|' : e.reply->body[i]);
				printf("]");
			}
			printf("\n");
		}
		else if (e.kind == MILTER_EV_PROGRESS)
			printf("%-8s progress\n", name);
		else {
			printf("%-8s %s", name, vname(e.verdict));
			if (e.has_reply) {
				printf(" %d ", e.reply->code);
				put_escaped(e.reply->text);
			}
			if (e.why) printf(" (%s)", e.why);
			if (e.quarantine) printf(" quarantine=%s", e.quarantine_reason);
			printf("\n");
		}
		memmove(in, in + used, inlen - used); inlen -= used;
		if (e.kind == MILTER_EV_VERDICT) return;
	}
}

static int policy(int argc, char **argv)
{
	char why[256], act[POLICYD_ACTION_MAX], line[POLICYD_REPLY_LINE_MAX];
	struct policyc *p = policyc_new_inet("127.0.0.1", (uint16_t)atoi(argv[2]), why, sizeof why);
	struct policyd_request r = { .protocol_state = "RCPT", .protocol_name = "ESMTP",
	    .helo_name = "client.example.org", .sender = "a@example.org", .recipient = argv[3],
	    .client_address = "192.0.2.1", .client_name = "unknown",
	    .reverse_client_name = "unknown", .instance = "1.1", .client_port = 40000 };
	struct policyd_verdict v;
	struct policyd_chain ch;
	struct sbuf b = { 0 };
	const char *w;

	policyd_request_put(&b, &r, 0);
	policyd_chain_init(&ch);
	if (p == NULL || policyc_ask(p, b.p, b.len, 10, act, why, sizeof why) != 0) {
		printf("failed %s\n", why);
		policyd_chain_default(&ch, 0);
	} else if (policyd_action_parse(act, &v, &w) != 0)
		policyd_chain_default(&ch, 0);
	else
		policyd_chain_add(&ch, &v);
	if (policyd_chain_result(&ch, POLICYD_AT_RCPT, argv[3], line))
		printf("refuse %s\n", line);
	else
		printf("accept\n");
	for (unsigned i = 0; i < ch.nprepend; i++)
		printf("prepend %s\n", ch.prepend[i]);
	free(b.p);
	policyc_free(p);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "policy") == 0)
		return policy(argc, argv);
	if (argc < 3 || strcmp(argv[1], "milter") != 0) {
		fprintf(stderr, "usage: filter_drive milter PORT SUBJECT [BODYFILE] | policy PORT RCPT\n");
		return 2;
	}
	argv++;
	argc--;
	if (getenv("FILTER_DRIVE_WAIT_MS"))
		wait_ms = atoi(getenv("FILTER_DRIVE_WAIT_MS"));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])) };
	const char *subject = argc > 2 ? argv[2] : "hello", *bodyf = argc > 3 ? argv[3] : NULL;
	const char *mail[] = { "<a@example.org>" }, *rcpt[] = { "<bob@localhost>" };
	char body[70000] = "Hello, world.\r\n", hv[256];
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 1; }
	if (bodyf) { FILE *f = fopen(bodyf, "rb"); size_t n = fread(body, 1, sizeof body - 1, f); body[n] = 0; fclose(f); }
	milter_conv_open(&C);
	step("optneg", MILTER_STEP_WAIT);
	printf("agreed: version %u actions 0x%x protocol 0x%x\n", C.agreed.version, C.agreed.actions, C.agreed.protocol);
	step("connect", milter_conv_connect(&C, "localhost", SMFIA_INET, 40000, "127.0.0.1", macro, NULL));
	step("helo", milter_conv_helo(&C, "client.example.org", macro, NULL));
	step("mail", milter_conv_mail(&C, mail, 1, macro, NULL));
	step("rcpt", milter_conv_rcpt(&C, rcpt, 1, macro, NULL));
	step("data", milter_conv_data(&C, macro, NULL));
	step("header", milter_conv_header(&C, "From", " a@example.org", 14));
	step("header", milter_conv_header(&C, "To", " bob@localhost", 14));
	snprintf(hv, sizeof hv, " %s", subject);
	step("header", milter_conv_header(&C, "Subject", hv, strlen(hv)));
	step("header", milter_conv_header(&C, "Date", " Tue, 08 Dec 2026 05:00:00 +0000", 32));
	step("header", milter_conv_header(&C, "Message-ID", " <1@example.org>", 16));
	if (bodyf && strstr(bodyf, "eicar")) {
		step("header", milter_conv_header(&C, "MIME-Version", " 1.0", 4));
		step("header", milter_conv_header(&C, "Content-Type", " multipart/mixed; boundary=XX", 29));
	}
	step("eoh", milter_conv_eoh(&C, macro, NULL));
	step("body", milter_conv_body(&C, body, strlen(body)));
	step("eom", milter_conv_eom(&C, macro, NULL));
	milter_conv_quit(&C);
	flush();
	milter_conv_free(&C);
	return 0;
}
