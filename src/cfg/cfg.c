/*
 * cfg — configuration snapshots; see cfg.h.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/outtls.h"
#include "cfg/cfg.h"
#include "util/log.h"

/* Prefix err with "FILE:LINE: key: " so every file error names the setting behind it. */
static void
blame_key(const struct conf *cf, enum conf_key k, char *err, size_t errlen)
{
	char tmp[1024];

	snprintf(tmp, sizeof(tmp), "%s", err);
	if (cf->set[k])
		snprintf(err, errlen, "%s:%u: %s: %s", cf->source, cf->set_line[k], conf_key_name(k),
		    tmp);
	else
		snprintf(err, errlen, "%s: %s: %s", cf->source, conf_key_name(k), tmp);
}

/* /etc/mailname (Debian: the host's mail name): its first line, lower-case, "" if none. */
static void
read_mailname(char *out, size_t len)
{
	FILE *fp = fopen("/etc/mailname", "re");
	char line[256];
	size_t n;

	out[0] = '\0';
	if (fp == NULL)
		return;
	if (fgets(line, sizeof(line), fp) != NULL) {
		n = strcspn(line, " \t\r\n");
		line[n] = '\0';
		for (size_t i = 0; i < n; i++)
			if (line[i] >= 'A' && line[i] <= 'Z')
				line[i] = (char)(line[i] - 'A' + 'a');
		if (n > 0 && strchr(line, '/') == NULL)
			snprintf(out, len, "%s", line);
	}
	fclose(fp);
}

/* Does any outbound TLS level ask for certificate verification (or a CA file is named,
 * which is then checked at load even before a policy uses it)? */
static int
verify_needed(const struct conf *cf)
{
	if (cf->smtp_tls_ca_file != NULL || outtls_required(cf->smtp_tls) ||
	    outtls_uses(cf, OUTTLS_MTASTS))
		return 1;
	/* REQUIRETLS mail (it arrives only over TLS, so only with a certificate) may need an
	 * MTA-STS policy fetched and checked */
	if (cf->tls_cert_file != NULL)
		return 1;
	for (size_t i = 0; i < cf->ntls_policy; i++)
		if (outtls_required(cf->tls_policy[i].level))
			return 1;
	return 0;
}

/* Load a snapshot; see cfg.h. */
struct cfg *
cfg_load(const char *conf_path, int generate, char *err, size_t errlen)
{
	struct cfg *c = calloc(1, sizeof(*c));
	struct conf *cf;

	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->refs = 1;
	if (conf_load(conf_path, &c->conf, err, errlen) < 0) {
		free(c);
		return NULL;
	}
	cf = &c->conf;
	if (cf->recipients_file != NULL &&
	    (c->recipients = recipients_load(cf->recipients_file, err, errlen)) == NULL) {
		blame_key(cf, CK_RECIPIENTS_FILE, err, errlen);
		goto fail;
	}
	read_mailname(c->mailname, sizeof(c->mailname));
	if (cf->alias_maps != NULL &&
	    (c->aliases = aliases_load(cf->alias_maps, err, errlen)) == NULL) {
		blame_key(cf, CK_ALIAS_MAPS, err, errlen);
		goto fail;
	}
	if (cf->auth_users_file != NULL &&
	    (c->authusers = authusers_load(cf->auth_users_file, err, errlen)) == NULL) {
		blame_key(cf, CK_AUTH_USERS_FILE, err, errlen);
		goto fail;
	}
	if (cf->sender_login_maps != NULL &&
	    (c->senderlogins = senderlogins_load(cf->sender_login_maps, err, errlen)) == NULL) {
		blame_key(cf, CK_SENDER_LOGIN_MAPS, err, errlen);
		goto fail;
	}
	if (cf->transport_map != NULL) {
		if ((c->transports = transport_map_load(cf->transport_map, err, errlen)) == NULL) {
			blame_key(cf, CK_TRANSPORT_MAP, err, errlen);
			goto fail;
		}
		/* an exception for a domain that is not local would route nothing */
		for (size_t i = 0; i < transport_map_count(c->transports); i++)
			if (!conf_is_local_domain(cf, transport_map_domain(c->transports, i))) {
				snprintf(err, errlen, "%s:%u: %s is not in local_domains (a transport "
				    "says how a local domain's mail is stored)", cf->transport_map,
				    transport_map_line(c->transports, i),
				    transport_map_domain(c->transports, i));
				blame_key(cf, CK_TRANSPORT_MAP, err, errlen);
				goto fail;
			}
	}
	if (cf->auth_backend == AUTH_BACKEND_DOVECOT &&
	    (c->dvauth = dvauth_new(cf->auth_dovecot_socket)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if ((cf->tls_cert_file == NULL) != (cf->tls_key_file == NULL)) {
		snprintf(err, errlen, "%s: %s is set but %s is not; set both or neither", cf->source,
		    cf->tls_cert_file ? "tls_cert_file" : "tls_key_file",
		    cf->tls_cert_file ? "tls_key_file" : "tls_cert_file");
		goto fail;
	}
	if (cf->tls_cert_file != NULL) {
		struct stat st;
		if (conf_path == NULL && generate && stat(cf->tls_cert_file, &st) < 0 &&
		    errno == ENOENT) {
			if (tls_selfsigned_generate(cf->hostname, cf->tls_cert_file, cf->tls_key_file,
			    err, errlen) < 0) {
				blame_key(cf, CK_TLS_CERT_FILE, err, errlen);
				goto fail;
			}
			log_info("event=tls-certificate-generated cert=%s key=%s subject=CN=%s "
			    "note=self-signed", cf->tls_cert_file, cf->tls_key_file, cf->hostname);
		}
		if (conf_path == NULL && !generate && stat(cf->tls_cert_file, &st) < 0) {
			/* `imsd check` on the embedded default: nothing to load yet. */
		} else if ((c->tls = tls_server_ctx_new(cf->tls_cert_file, cf->tls_key_file, err,
		    errlen)) == NULL) {
			/* the message names the file at fault; name the key of that file */
			blame_key(cf, strncmp(err, cf->tls_key_file, strlen(cf->tls_key_file)) == 0 &&
			    strcmp(cf->tls_key_file, cf->tls_cert_file) != 0 ? CK_TLS_KEY_FILE :
			    CK_TLS_CERT_FILE, err, errlen);
			goto fail;
		}
	}
	if (verify_needed(cf) && (c->client_verify = tls_client_verify_ctx_new(
	    cf->smtp_tls_ca_file, err, errlen)) == NULL) {
		blame_key(cf, cf->smtp_tls_ca_file != NULL ? CK_SMTP_TLS_CA_FILE : CK_SMTP_TLS, err,
		    errlen);
		goto fail;
	}
	if ((outtls_uses(cf, OUTTLS_DANE) || (cf->dnssec_trust_resolver && cf->ndns_servers > 0)) &&
	    (c->client_dane = tls_client_dane_ctx_new(err,
	    errlen)) == NULL) {
		blame_key(cf, cf->smtp_tls == OUTTLS_DANE ? CK_SMTP_TLS : CK_TLS_POLICY, err, errlen);
		goto fail;
	}
	if (dkim_keys_load(cf, &c->dkim, err, errlen) < 0) {
		blame_key(cf, CK_DKIM_SIGN, err, errlen);
		goto fail;
	}
	if ((cf->nsmtps_listen > 0) && c->tls == NULL && !(conf_path == NULL && !generate)) {
		snprintf(err, errlen, "%s: smtps_listen: implicit TLS needs tls_cert_file and "
		    "tls_key_file", cf->source);
		goto fail;
	}
	return c;
fail:
	c->refs = 1;
	cfg_unref(c);
	return NULL;
}

struct cfg *
cfg_ref(struct cfg *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void
cfg_unref(struct cfg *c)
{
	if (c == NULL || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	if (c->recipients != NULL)
		recipients_free(c->recipients);
	if (c->authusers != NULL)
		authusers_free(c->authusers);
	senderlogins_free(c->senderlogins);
	dvauth_free(c->dvauth);
	aliases_free(c->aliases);
	transport_map_free(c->transports);
	if (c->tls != NULL)
		tls_ctx_unref(c->tls);
	if (c->client_verify != NULL)
		tls_ctx_unref(c->client_verify);
	if (c->client_dane != NULL)
		tls_ctx_unref(c->client_dane);
	dkim_keys_free(&c->dkim);
	conf_free(&c->conf);
	free(c);
}
