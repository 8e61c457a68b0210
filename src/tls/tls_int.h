/*
 * tls_int — what tls.c and tls_inspect.c share inside the module: the context structure.
 * Nothing outside src/tls/ includes this.
 */
#ifndef IMSD_TLS_INT_H
#define IMSD_TLS_INT_H

#include <openssl/ssl.h>

struct tls_ctx {
	SSL_CTX	*ssl;
	int	 refs;
	int	 server;
};

#endif
