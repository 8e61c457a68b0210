/*
 * cfg — a loaded configuration snapshot (conf + recipients table), reference counted so
 * that a SIGHUP reload can swap it while sessions and the delivery thread keep theirs.
 */
#ifndef IMSD_CFG_H
#define IMSD_CFG_H

#include "mailauth/dkimop.h"
#include "conf/conf.h"
#include "net/dvauth.h"
#include "policy/aliases.h"
#include "policy/authusers.h"
#include "policy/recipients.h"
#include "policy/senderlogins.h"
#include "policy/transport.h"
#include "tls/tls.h"

struct cfg {
	struct conf conf;
	struct recipients *recipients;	/* NULL when recipients_file is unset */
	struct aliases *aliases;	/* alias_maps, read and checked; NULL when unset */
	char mailname[256];		/* /etc/mailname, lower-case; "" when there is none */
	struct authusers *authusers;	/* NULL when auth_users_file is unset */
	struct senderlogins *senderlogins;	/* NULL when sender_login_maps is unset */
	struct transport_map *transports;	/* transport_map; NULL when unset */
	struct dvauth *dvauth;		/* auth_backend = dovecot: its socket's client; else NULL */
	struct tls_ctx *tls;		/* NULL when no certificate is configured */
	struct tls_ctx *client_verify;	/* trust store for verified relaying; NULL when no
					 * smtp_tls/tls_policy level needs one */
	struct tls_ctx *client_dane;	/* DANE-enabled client context; NULL unless dane is used */
	struct dkim_keys dkim;		/* the dkim_sign keys, read and checked */
	int refs;			/* atomic */
};

/*
 * Load conf_path (NULL = embedded default) and everything it names: recipients_file,
 * auth_users_file, transport_map (each of its domains checked to be local), the certificate
 * and key (checked to match). With the embedded default and generate set, a missing
 * certificate under ./var/tls is created first (self-signed for hostname). NULL with err on
 * failure; err names the file at fault.
 */
struct cfg *cfg_load(const char *conf_path, int generate, char *err, size_t errlen);
struct cfg *cfg_ref(struct cfg *c);
void cfg_unref(struct cfg *c);

#endif
