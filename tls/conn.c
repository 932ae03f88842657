/*
 * tls/conn.c - one TLS connection over memory buffers, and its verification.
 *
 * tls_conn_new_client(ctx, pol, host, port, domain) / tls_conn_new_server(ctx)
 * make a connection; the caller owns it and frees it with tls_conn_free().
 * No sockets: ciphertext from the peer goes in with tls_conn_input() (or
 * input_space + input_commit), ciphertext for the peer comes out of
 * tls_conn_output() + tls_conn_output_done().  After every call on a
 * connection the caller drains the output: a handshake step, a read (key
 * updates, alerts) or a shutdown may all produce bytes.
 *
 * Status convention (common/status.h): SP_OK, SP_AGAIN (needs input),
 * SP_DONE (peer closed), SP_ERROR with the reason in tls_conn_error().
 *
 * Order for a client: tls_conn_new_client; loop { tls_conn_handshake;
 * drain output; on SP_AGAIN wait for socket bytes, tls_conn_input (or
 * tls_conn_input_eof on end of stream) }.  On SP_OK drain the output too
 * (the TLS 1.3 client Finished is still queued).  Then tls_conn_write +
 * drain, and tls_conn_read after each input until SP_AGAIN: reads also
 * carry TLS 1.3 session tickets, which are saved for resumption there.
 * tls_conn_write takes everything unless more than 64 KB of ciphertext is
 * pending; it then takes less (possibly 0) until the output is drained.
 * End of stream without close_notify reads as SP_DONE (SMTP has its own
 * framing).  A handshake that fails while offering a cached session drops
 * that session: a new connection to the same host:port does a full
 * handshake (tls_conn_offered_session tells the caller to retry once).
 * Every client handshake is counted once in the context's stats: full,
 * resumed, or failed (also when the caller frees it unfinished, e.g. after
 * the peer closed).  The info strings (tls_conn_info) are static.
 *
 * Verification is ours, in tls_verify_cb (wolfSSL calls it for every
 * certificate of the chain, this build has WOLFSSL_ALWAYS_VERIFY_CB):
 * wolfSSL's chain and date checks give `preverify`; at the leaf we add the
 * name check (RFC 6125, tls_name_match, never wolfSSL's host flags), our
 * own date check, and pin matching for the fingerprint level, which may
 * accept a chain wolfSSL did not.  The first failure's reason is kept on
 * the connection and becomes tls_conn_error().
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include "tls/tls_internal.h"

#define IN_MAX		(1024 * 1024)	/* unread ciphertext we hold at most */
#define IN_CHUNK	(18 * 1024)	/* room offered by input_space: a record */
#define OUT_HIGH	(64 * 1024)	/* write stops taking plaintext above this */
#define OUT_MAX		(4 * 1024 * 1024)	/* hard bound: error beyond */
#define WRITE_CHUNK	(16 * 1024)

struct tls_conn {
	tls_ctx_t *ctx;
	WOLFSSL *ssl;
	int	server;
	const tls_policy_t *pol;	/* borrowed; NULL: verify level */
	enum sp_tls_level level;
	char	host[256];
	char	domain[256];
	char	key[900];		/* session cache key */
	unsigned char *in;
	size_t	in_off, in_len, in_cap;
	int	in_eof;
	unsigned char first[16];	/* peer's first bytes: version sniffing */
	size_t	nfirst;
	unsigned char *out;
	size_t	out_off, out_len, out_cap;
	int	out_overflow;
	int	established;
	int	failed;
	int	offered_session;	/* a cached session was set */
	uint64_t offered_serial;	/* ... which one (tls_cache_drop) */
	int	leaf_checked;		/* verify callback saw the leaf */
	int	resumed;
	int	started;		/* tls_conn_handshake was called */
	int	counted;		/* this handshake is in the ctx stats */
	unsigned char saved_sum[32];	/* session_sum of what the cache holds from us */
	char	verified[8];
	char	reason[1024];
};

static int buf_reserve(unsigned char **buf, size_t *off, size_t *len, size_t *cap,
		       size_t need, size_t max);
static void set_reason(tls_conn_t *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void fail_reason(tls_conn_t *c, int ret);
static const char *alert_name(int code);
static const char *version_name(unsigned char major, unsigned char minor);
static int check_leaf(tls_conn_t *c, WOLFSSL_X509 *x, char *why, size_t whylen);
static int leaf_names(WOLFSSL_X509 *x, char names[][256], size_t max, size_t *n,
		      int *had_san);
static int leaf_pinned(const tls_conn_t *c, WOLFSSL_X509 *x, char *hex, size_t hexlen);
static void asn1_time_text(WOLFSSL_ASN1_TIME *t, char *buf, size_t len);
static int session_sum(WOLFSSL *ssl, int tls13, unsigned char sum[32]);
static void maybe_save(tls_conn_t *c);
static void count(tls_conn_t *c, int ok);
static tls_conn_t *conn_alloc(tls_ctx_t *ctx, WOLFSSL_CTX *w);

/* buf_reserve - make room for need more bytes, compacting first; -1 over max */
static int
buf_reserve(unsigned char **buf, size_t *off, size_t *len, size_t *cap, size_t need,
	    size_t max)
{
	unsigned char *nb;
	size_t ncap;

	if (*len + need > max)
		return -1;
	if (*off > 0 && *off + *len + need > *cap) {
		memmove(*buf, *buf + *off, *len);
		*off = 0;
	}
	if (*off + *len + need <= *cap)
		return 0;
	for (ncap = *cap ? *cap : 4096; ncap < *len + need; ncap *= 2)
		;
	if ((nb = realloc(*buf, ncap)) == NULL)
		return -1;
	*buf = nb;
	*cap = ncap;
	return 0;
}

/* set_reason - keep the first failure reason */
static void
set_reason(tls_conn_t *c, const char *fmt, ...)
{
	va_list ap;

	if (c->reason[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
	va_end(ap);
}

/* tls_io_recv - wolfSSL reads ciphertext from our input buffer */
int
tls_io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	tls_conn_t *c = arg;
	size_t n;

	(void)ssl;
	if (c->in_len == 0)
		return c->in_eof ? WOLFSSL_CBIO_ERR_CONN_CLOSE : WOLFSSL_CBIO_ERR_WANT_READ;
	n = sz < 0 ? 0 : (size_t)sz;
	if (n > c->in_len)
		n = c->in_len;
	memcpy(buf, c->in + c->in_off, n);
	c->in_off += n;
	c->in_len -= n;
	if (c->in_len == 0)
		c->in_off = 0;
	return (int)n;
}

/* tls_io_send - wolfSSL appends ciphertext to our output buffer.  It never
 * says WANT_WRITE (wolfSSL would then want the same write repeated); the
 * bound is enforced by tls_conn_write taking less plaintext instead. */
int
tls_io_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	tls_conn_t *c = arg;
	size_t n = sz < 0 ? 0 : (size_t)sz;

	(void)ssl;
	if (buf_reserve(&c->out, &c->out_off, &c->out_len, &c->out_cap, n, OUT_MAX) < 0) {
		c->out_overflow = 1;
		return WOLFSSL_CBIO_ERR_GENERAL;
	}
	memcpy(c->out + c->out_off + c->out_len, buf, n);
	c->out_len += n;
	return (int)n;
}

/* conn_alloc - the common part of both roles */
static tls_conn_t *
conn_alloc(tls_ctx_t *ctx, WOLFSSL_CTX *w)
{
	tls_conn_t *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->ctx = ctx;
	if ((c->ssl = wolfSSL_new(w)) == NULL) {
		free(c);
		return NULL;
	}
	wolfSSL_SetIOReadCtx(c->ssl, c);
	wolfSSL_SetIOWriteCtx(c->ssl, c);
	wolfSSL_SetCertCbCtx(c->ssl, c);
	return c;
}

/* tls_conn_new_client - a client connection to MX host:port for domain
 * under pol (borrowed, may be NULL for the verify level); NULL on failure
 * (out of memory, or a ca= file of the policy that does not load) */
tls_conn_t *
tls_conn_new_client(tls_ctx_t *ctx, const tls_policy_t *pol, const char *host,
		    uint16_t port, const char *domain)
{
	char err[512] = "";
	WOLFSSL_CTX *w;
	tls_conn_t *c;

	if (ctx == NULL || ctx->server || host == NULL)
		return NULL;
	/* a ca= file that does not load fails this connection with the reason,
	 * on the first tls_conn_handshake, rather than returning NULL silently */
	if ((w = tls_ctx_for_policy(ctx, pol, err, sizeof(err))) == NULL)
		w = ctx->wctx;
	if ((c = conn_alloc(ctx, w)) == NULL)
		return NULL;
	if (err[0] != '\0') {
		set_reason(c, "%s", err);
		c->failed = 1;
	}
	c->pol = pol;
	c->level = pol ? pol->level : SP_TLS_VERIFY;
	snprintf(c->host, sizeof(c->host), "%s", host);
	snprintf(c->domain, sizeof(c->domain), "%s", domain ? domain : "");
	/* strip a trailing dot: names compare without it */
	if (c->host[0] && c->host[strlen(c->host) - 1] == '.')
		c->host[strlen(c->host) - 1] = '\0';
	snprintf(c->verified, sizeof(c->verified), "%s",
	    c->level == SP_TLS_ENCRYPT ? "no" :
	    c->level == SP_TLS_FINGERPRINT ? "pinned" : "yes");
	if (c->level == SP_TLS_ENCRYPT)
		wolfSSL_set_verify(c->ssl, WOLFSSL_VERIFY_NONE, NULL);
	else
		wolfSSL_set_verify(c->ssl, WOLFSSL_VERIFY_PEER, tls_verify_cb);
	/* SNI only for names: RFC 6066 forbids IP literals there */
	if (!tls_is_ip_literal(c->host) && c->host[0] != '\0')
		wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, c->host,
		    (unsigned short)strlen(c->host));
	tls_cache_key(c->key, sizeof(c->key), c->host, port, pol, c->domain);
	c->offered_session = tls_cache_apply(ctx, c->key, c->ssl, c->verified,
	    sizeof(c->verified), &c->offered_serial);
	/* what we offer is already cached: never save it back (maybe_save) */
	if (c->offered_session && !session_sum(c->ssl, 0, c->saved_sum))
		memset(c->saved_sum, 0, sizeof(c->saved_sum));
	return c;
}

/* tls_conn_new_server - a server connection (bench sink, tests) */
tls_conn_t *
tls_conn_new_server(tls_ctx_t *ctx)
{
	tls_conn_t *c;

	if (ctx == NULL || !ctx->server)
		return NULL;
	if ((c = conn_alloc(ctx, ctx->wctx)) == NULL)
		return NULL;
	c->server = 1;
	snprintf(c->verified, sizeof(c->verified), "no");
	return c;
}

/* tls_conn_free - free the connection (NULL is fine) */
void
tls_conn_free(tls_conn_t *c)
{
	if (c == NULL)
		return;
	/* a client handshake abandoned by the caller (the peer closed and the
	 * engine saw the end of stream first) still counts as failed */
	if (!c->server && c->started && !c->counted)
		count(c, 0);
	wolfSSL_free(c->ssl);
	free(c->in);
	free(c->out);
	free(c);
}

/* tls_conn_input - copy ciphertext read from the peer */
void
tls_conn_input(tls_conn_t *c, const void *buf, size_t len)
{
	size_t room;
	void *p;

	while (len > 0) {
		if ((p = tls_conn_input_space(c, &room)) == NULL || room == 0)
			return;
		if (room > len)
			room = len;
		memcpy(p, buf, room);
		tls_conn_input_commit(c, room);
		buf = (const unsigned char *)buf + room;
		len -= room;
	}
}

/* tls_conn_input_space - room to read into directly; NULL (room 0) when the
 * peer sent more than IN_MAX unread bytes: the next call then fails */
void *
tls_conn_input_space(tls_conn_t *c, size_t *room)
{
	*room = 0;
	if (buf_reserve(&c->in, &c->in_off, &c->in_len, &c->in_cap, IN_CHUNK, IN_MAX) < 0) {
		set_reason(c, "peer sent more than %u unread bytes", IN_MAX);
		c->failed = 1;
		return NULL;
	}
	*room = c->in_cap - c->in_off - c->in_len;
	return c->in + c->in_off + c->in_len;
}

/* tls_conn_input_commit - n bytes were written into the input space */
void
tls_conn_input_commit(tls_conn_t *c, size_t n)
{
	size_t room = c->in_cap - c->in_off - c->in_len, k;

	if (n > room)
		n = room;
	for (k = 0; c->nfirst < sizeof(c->first) && k < n; k++)
		c->first[c->nfirst++] = c->in[c->in_off + c->in_len + k];
	c->in_len += n;
}

/* tls_conn_input_eof - the peer closed its side */
void
tls_conn_input_eof(tls_conn_t *c)
{
	c->in_eof = 1;
}

/* tls_conn_output - pending ciphertext (borrowed until the next call on c) */
size_t
tls_conn_output(tls_conn_t *c, const void **p)
{
	*p = c->out + c->out_off;
	return c->out_len;
}

/* tls_conn_output_done - n bytes of the output were sent */
void
tls_conn_output_done(tls_conn_t *c, size_t n)
{
	if (n > c->out_len)
		n = c->out_len;
	c->out_off += n;
	c->out_len -= n;
	if (c->out_len == 0)
		c->out_off = 0;
}

/* version_name - "TLS 1.1" for a record version */
static const char *
version_name(unsigned char major, unsigned char minor)
{
	if (major == 3 && minor == 0)
		return "SSL 3.0";
	if (major == 3 && minor == 1)
		return "TLS 1.0";
	if (major == 3 && minor == 2)
		return "TLS 1.1";
	if (major == 3 && minor == 3)
		return "TLS 1.2";
	if (major == 3 && minor == 4)
		return "TLS 1.3";
	return "an unknown version";
}

/* alert_name - RFC 8446 alert description names we are likely to see */
static const char *
alert_name(int code)
{
	switch (code) {
	case 0: return "close_notify";
	case 10: return "unexpected_message";
	case 20: return "bad_record_mac";
	case 40: return "handshake_failure";
	case 42: return "bad_certificate";
	case 43: return "unsupported_certificate";
	case 44: return "certificate_revoked";
	case 45: return "certificate_expired";
	case 46: return "certificate_unknown";
	case 47: return "illegal_parameter";
	case 48: return "unknown_ca";
	case 49: return "access_denied";
	case 50: return "decode_error";
	case 51: return "decrypt_error";
	case 70: return "protocol_version";
	case 71: return "insufficient_security";
	case 80: return "internal_error";
	case 90: return "user_canceled";
	case 109: return "missing_extension";
	case 110: return "unsupported_extension";
	case 112: return "unrecognized_name";
	case 116: return "certificate_required";
	case 120: return "no_application_protocol";
	default: return "unknown";
	}
}

/* fail_reason - turn a failed wolfSSL call into our reason text */
static void
fail_reason(tls_conn_t *c, int ret)
{
	WOLFSSL_ALERT_HISTORY h;
	char buf[WOLFSSL_MAX_ERROR_SZ];
	int e = wolfSSL_get_error(c->ssl, ret);
	const char *what = c->established ? "TLS failed" : "handshake failed";

	if (c->out_overflow) {
		set_reason(c, "%s: output buffer overflow", what);
		return;
	}
	memset(&h, 0, sizeof(h));
	wolfSSL_get_alert_history(c->ssl, &h);
	if (e == VERSION_ERROR) {
		/* the peer's hello carries its version at bytes 9-10 */
		if (c->nfirst >= 11 && c->first[0] == 22)
			set_reason(c, "%s: protocol version (peer offered %s)", what,
			    version_name(c->first[9], c->first[10]));
		else
			set_reason(c, "%s: protocol version", what);
	}
	if (h.last_rx.code > 0 || (h.last_rx.level == 2 && e == FATAL_ERROR)) {
		set_reason(c, "%s: peer sent alert %s (%d)", what,
		    alert_name(h.last_rx.code), h.last_rx.code);
		return;
	}
	if (c->in_eof && (e == SOCKET_PEER_CLOSED_E || e == SOCKET_ERROR_E ||
	    e == WOLFSSL_ERROR_SYSCALL || e == WOLFSSL_ERROR_ZERO_RETURN)) {
		set_reason(c, "peer closed %s", c->established ? "the connection" :
		    "during handshake");
		return;
	}
	wolfSSL_ERR_error_string_n((unsigned long)(e < 0 ? -e : e), buf, sizeof(buf));
	set_reason(c, "%s: %s (%d)", what, buf, e);
}

/* session_sum - a digest naming the resumption material ssl's session
 * holds: its ticket, else (TLS 1.2 only) its session id; 0 when there is
 * none (a TLS 1.3 session before its first ticket) */
static int
session_sum(WOLFSSL *ssl, int tls13, unsigned char sum[32])
{
	unsigned char buf[2048 + 1];
	const unsigned char *id;
	word32 tlen = sizeof(buf) - 1;
	unsigned int idlen = 0;
	WOLFSSL_SESSION *s;

	if (wolfSSL_get_SessionTicket(ssl, buf + 1, &tlen) == WOLFSSL_SUCCESS && tlen > 0) {
		buf[0] = 'T';
		return wc_Sha256Hash(buf, tlen + 1, sum) == 0;
	}
	if (tls13 || (s = wolfSSL_get_session(ssl)) == NULL ||
	    (id = wolfSSL_SESSION_get_id(s, &idlen)) == NULL || idlen == 0 || idlen > 32)
		return 0;
	buf[0] = 'I';
	memcpy(buf + 1, id, idlen);
	return wc_Sha256Hash(buf, idlen + 1, sum) == 0;
}

/* maybe_save - keep the client session for resumption when it holds new
 * resumption material: after the handshake (TLS 1.2) and after reads, where
 * TLS 1.3 tickets arrive.
 *
 * Never save a session whose ticket is the one we offered.  After a TLS 1.3
 * handshake (resumed, or full because the server declined the ticket)
 * wolfSSL's session already carries this connection's new resumption
 * secret but still the old ticket and nonce until the server's
 * NewSessionTicket is read; saved in that state, every connection that
 * picked it up failed at the server with "binder does not verify" (the
 * binder key came from the new secret, the server derives it from the old
 * one sealed in the ticket).  Sequentially the next ticket repaired the
 * entry at once, so only connections starting concurrently saw it. */
static void
maybe_save(tls_conn_t *c)
{
	unsigned char sum[32];

	if (c->server || !c->established)
		return;
	if (!session_sum(c->ssl, wolfSSL_version(c->ssl) == TLS1_3_VERSION, sum))
		return;		/* nothing to resume with yet */
	if (memcmp(sum, c->saved_sum, sizeof(sum)) == 0)
		return;
	memcpy(c->saved_sum, sum, sizeof(sum));
	tls_cache_save(c->ctx, c->key, c->ssl, c->verified);
}

/* count - this client handshake into the context's counters, once */
static void
count(tls_conn_t *c, int ok)
{
	if (c->counted)
		return;
	c->counted = 1;
	tls_stats_count(c->ctx, ok, c->resumed);
}

/* tls_conn_handshake - SP_OK when established and verified, SP_AGAIN for
 * more input, SP_ERROR with tls_conn_error() */
int
tls_conn_handshake(tls_conn_t *c)
{
	WOLFSSL_X509 *peer;
	int ret, e;

	c->started = 1;
	if (c->failed)
		return SP_ERROR;
	if (c->established)
		return SP_OK;
	ret = c->server ? wolfSSL_accept(c->ssl) : wolfSSL_connect(c->ssl);
	if (ret != WOLFSSL_SUCCESS) {
		e = wolfSSL_get_error(c->ssl, ret);
		if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE)
			return SP_AGAIN;
		fail_reason(c, ret);
		c->failed = 1;
		if (!c->server) {
			count(c, 0);
			/* a session that did not resume is not offered again */
			if (c->offered_session)
				tls_cache_drop(c->ctx, c->key, c->offered_serial);
		}
		return SP_ERROR;
	}
	c->resumed = wolfSSL_session_reused(c->ssl) == 1;
	if (!c->server && !c->resumed && c->level != SP_TLS_ENCRYPT && !c->leaf_checked) {
		/* defence in depth: never trust a chain our callback did not see */
		set_reason(c, "certificate verify failed: peer certificate not checked");
		c->failed = 1;
		count(c, 0);
		return SP_ERROR;
	}
	/* this wolfSSL hands out a copy of the peer certificate: free it */
	if (c->server && (peer = wolfSSL_get_peer_certificate(c->ssl)) != NULL) {
		snprintf(c->verified, sizeof(c->verified), "yes");
		wolfSSL_X509_free(peer);
	}
	c->established = 1;
	if (!c->server) {
		count(c, 1);
		maybe_save(c);
	}
	return SP_OK;
}

/* tls_conn_read - plaintext out: SP_OK (*got > 0), SP_AGAIN, SP_DONE, SP_ERROR */
int
tls_conn_read(tls_conn_t *c, void *buf, size_t len, size_t *got)
{
	int ret, e;

	*got = 0;
	if (c->failed)
		return SP_ERROR;
	if (!c->established)
		return SP_AGAIN;
	if (len > INT32_MAX)
		len = INT32_MAX;
	ret = wolfSSL_read(c->ssl, buf, (int)len);
	if (ret > 0) {
		*got = (size_t)ret;
		maybe_save(c);
		return SP_OK;
	}
	e = wolfSSL_get_error(c->ssl, ret);
	maybe_save(c);
	if (e == WOLFSSL_ERROR_WANT_READ || e == WOLFSSL_ERROR_WANT_WRITE)
		return SP_AGAIN;
	if (e == WOLFSSL_ERROR_ZERO_RETURN)
		return SP_DONE;
	/* end of stream without close_notify: SMTP has its own framing
	 * (QUIT / final dot), so report the close, not an attack */
	if (c->in_eof && c->in_len == 0 && (e == SOCKET_PEER_CLOSED_E ||
	    e == SOCKET_ERROR_E || e == WOLFSSL_ERROR_SYSCALL))
		return SP_DONE;
	fail_reason(c, ret);
	c->failed = 1;
	return SP_ERROR;
}

/* tls_conn_write - plaintext in; takes less than len when output is full */
int
tls_conn_write(tls_conn_t *c, const void *buf, size_t len, size_t *put)
{
	size_t n;
	int ret;

	*put = 0;
	if (c->failed || !c->established) {
		set_reason(c, "write before the handshake completed");
		return SP_ERROR;
	}
	while (*put < len && c->out_len < OUT_HIGH) {
		n = len - *put;
		if (n > WRITE_CHUNK)
			n = WRITE_CHUNK;
		ret = wolfSSL_write(c->ssl, (const unsigned char *)buf + *put, (int)n);
		if (ret <= 0) {
			fail_reason(c, ret);
			c->failed = 1;
			return SP_ERROR;
		}
		*put += (size_t)ret;
	}
	return SP_OK;
}

/* tls_conn_shutdown - queue close_notify (drain tls_conn_output after) */
void
tls_conn_shutdown(tls_conn_t *c)
{
	if (c->established && !c->failed)
		wolfSSL_shutdown(c->ssl);
}

/* tls_thread_cleanup - free what wolfSSL keeps per thread (the ECC
 * fixed-point cache: about 3 KB per point, grown by every handshake) */
void
tls_thread_cleanup(void)
{
#ifdef FP_ECC
	wc_ecc_fp_free();
#endif
}

/* tls_conn_offered_session - 1 when this client connection offered a cached
 * session (a failed handshake already dropped it: retry once without) */
int
tls_conn_offered_session(const tls_conn_t *c)
{
	return c != NULL && c->offered_session;
}

/* tls_conn_error - reason of the last SP_ERROR (borrowed) */
const char *
tls_conn_error(const tls_conn_t *c)
{
	return c->reason[0] ? c->reason : "no error";
}

/* tls_conn_info - version, cipher, verdict, resumption; the strings are
 * static and outlive the connection */
void
tls_conn_info(const tls_conn_t *c, tls_info_t *info)
{
	const char *v;
	WOLFSSL_CIPHER *ci;

	memset(info, 0, sizeof(*info));
	info->version = "none";
	info->cipher = "none";
	/* static strings: the info may outlive the connection */
	info->verified = strcmp(c->verified, "yes") == 0 ? "yes" :
	    strcmp(c->verified, "pinned") == 0 ? "pinned" : "no";
	info->resumed = c->resumed;
	if (!c->established)
		return;
	switch (wolfSSL_version(c->ssl)) {
	case TLS1_3_VERSION: v = "TLSv1.3"; break;
	case TLS1_2_VERSION: v = "TLSv1.2"; break;
	case TLS1_1_VERSION: v = "TLSv1.1"; break;
	default: v = "unknown"; break;
	}
	info->version = v;
	if ((ci = wolfSSL_get_current_cipher(c->ssl)) != NULL)
		info->cipher = wolfSSL_CIPHER_get_name(ci);
}

/* asn1_time_text - "Jan  1 00:00:00 2002 GMT" */
static void
asn1_time_text(WOLFSSL_ASN1_TIME *t, char *buf, size_t len)
{
	char tmp[64];

	if (t == NULL || wolfSSL_ASN1_TIME_to_string(t, tmp, sizeof(tmp)) == NULL)
		snprintf(buf, len, "unknown");
	else
		snprintf(buf, len, "%s", tmp);
}

/* leaf_names - SAN dNSNames (or, with no DNS SAN, the CN) of x; IP SANs too */
static int
leaf_names(WOLFSSL_X509 *x, char names[][256], size_t max, size_t *n, int *had_san)
{
	char *s;

	*n = 0;
	*had_san = 0;
	while ((s = wolfSSL_X509_get_next_altname(x)) != NULL) {
		*had_san = 1;
		if (*n < max)
			snprintf(names[(*n)++], 256, "%s", s);
	}
	if (!*had_san && (s = wolfSSL_X509_get_subjectCN(x)) != NULL && s[0] != '\0')
		snprintf(names[(*n)++], 256, "%s", s);
	return 0;
}

/* leaf_pinned - 1 when the SHA-256 of x's DER or SPKI DER is a pin; hex
 * gets the certificate digest for the error message */
static int
leaf_pinned(const tls_conn_t *c, WOLFSSL_X509 *x, char *hex, size_t hexlen)
{
	unsigned char dcert[32], dspki[32], *spki = NULL, *p;
	const unsigned char *der;
	WOLFSSL_EVP_PKEY *pk;
	int dlen = 0, slen, have_spki = 0;
	size_t i;

	hex[0] = '\0';
	if ((der = wolfSSL_X509_get_der(x, &dlen)) == NULL || dlen <= 0)
		return 0;
	wc_Sha256Hash(der, (word32)dlen, dcert);
	if ((pk = wolfSSL_X509_get_pubkey(x)) != NULL) {
		if ((slen = wolfSSL_i2d_PUBKEY(pk, NULL)) > 0 &&
		    (spki = malloc((size_t)slen)) != NULL) {
			p = spki;
			if (wolfSSL_i2d_PUBKEY(pk, &p) == slen) {
				wc_Sha256Hash(spki, (word32)slen, dspki);
				have_spki = 1;
			}
			free(spki);
		}
		wolfSSL_EVP_PKEY_free(pk);
	}
	for (i = 0; i < 32 && 2 * i + 2 < hexlen; i++)
		snprintf(hex + 2 * i, 3, "%02X", dcert[i]);
	for (i = 0; c->pol != NULL && i < c->pol->npins; i++)
		if (memcmp(c->pol->pins[i], dcert, 32) == 0 ||
		    (have_spki && memcmp(c->pol->pins[i], dspki, 32) == 0))
			return 1;
	return 0;
}

/* check_leaf - our checks on the peer's certificate: dates, then name or
 * pin by level; 1 good, 0 with why filled */
static int
check_leaf(tls_conn_t *c, WOLFSSL_X509 *x, char *why, size_t whylen)
{
	char names[16][256], list[400], when[64], hex[80];
	const char *want[TLS_MAX_MATCH + 1];
	size_t n = 0, nwant = 0, i, j, off = 0;
	int had_san;

	if (wolfSSL_X509_cmp_current_time(wolfSSL_X509_get_notAfter(x)) <= 0) {
		asn1_time_text(wolfSSL_X509_get_notAfter(x), when, sizeof(when));
		snprintf(why, whylen, "certificate has expired (notAfter %s)", when);
		return 0;
	}
	if (wolfSSL_X509_cmp_current_time(wolfSSL_X509_get_notBefore(x)) > 0) {
		asn1_time_text(wolfSSL_X509_get_notBefore(x), when, sizeof(when));
		snprintf(why, whylen, "certificate is not yet valid (notBefore %s)", when);
		return 0;
	}
	if (c->level == SP_TLS_FINGERPRINT) {
		if (leaf_pinned(c, x, hex, sizeof(hex)))
			return 1;
		snprintf(why, whylen, "certificate fingerprint mismatch: sha256:%s not pinned "
		    "for %s", hex, c->pol ? c->pol->domain : c->domain);
		return 0;
	}
	if (c->level == SP_TLS_SECURE) {
		if (c->domain[0])
			want[nwant++] = c->domain;
		for (i = 0; c->pol != NULL && i < c->pol->nmatch && nwant < TLS_MAX_MATCH + 1; i++)
			want[nwant++] = c->pol->match[i];
	} else
		want[nwant++] = c->host;
	leaf_names(x, names, 16, &n, &had_san);
	for (i = 0; i < nwant; i++)
		for (j = 0; j < n; j++) {
			if (tls_is_ip_literal(want[i]) ? strcmp(names[j], want[i]) == 0 :
			    tls_name_match(names[j], want[i]))
				return 1;
		}
	list[0] = '\0';
	for (j = 0; j < n && off < sizeof(list); j++)
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s",
		    j ? ", " : "", names[j]);
	if (nwant == 1)
		snprintf(why, whylen, "certificate name mismatch: %s not in [%s]", want[0], list);
	else {
		char w[400];

		off = 0;
		w[0] = '\0';
		for (i = 0; i < nwant && off < sizeof(w); i++)
			off += (size_t)snprintf(w + off, sizeof(w) - off, "%s%s",
			    i ? " or " : "", want[i]);
		snprintf(why, whylen, "certificate name mismatch: %s not in [%s]", w, list);
	}
	return 0;
}

/* tls_verify_cb - wolfSSL's verdict per certificate, refined by our policy */
int
tls_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *st)
{
	tls_conn_t *c = st->userCtx;
	WOLFSSL_X509 *x = wolfSSL_X509_STORE_CTX_get_current_cert(st);
	int depth = wolfSSL_X509_STORE_CTX_get_error_depth(st);
	int err = wolfSSL_X509_STORE_CTX_get_error(st);
	char why[1024], name[256], when[64];

	if (c == NULL)
		return preverify;
	if (c->server) {
		if (!preverify)
			set_reason(c, "client certificate verify failed: %s",
			    wolfSSL_ERR_reason_error_string((unsigned long)(err < 0 ? -err : err)));
		return preverify;
	}
	if (c->level == SP_TLS_ENCRYPT)
		return 1;
	if (c->level == SP_TLS_FINGERPRINT && depth > 0)
		return 1;	/* the pin on the leaf decides, not the chain */
	if (!preverify && c->level != SP_TLS_FINGERPRINT) {
		if (err == ASN_AFTER_DATE_E || err == X509_V_ERR_CERT_HAS_EXPIRED ||
		    err == X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD) {
			asn1_time_text(x ? wolfSSL_X509_get_notAfter(x) : NULL, when, sizeof(when));
			set_reason(c, "certificate has expired (notAfter %s)", when);
		} else if (err == ASN_BEFORE_DATE_E || err == X509_V_ERR_CERT_NOT_YET_VALID ||
		    err == X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD) {
			asn1_time_text(x ? wolfSSL_X509_get_notBefore(x) : NULL, when, sizeof(when));
			set_reason(c, "certificate is not yet valid (notBefore %s)", when);
		} else if (err == ASN_NO_SIGNER_E || err == ASN_SELF_SIGNED_E ||
		    err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
		    err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
		    err == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
		    err == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN) {
			name[0] = '\0';
			if (x != NULL && wolfSSL_X509_NAME_oneline(wolfSSL_X509_get_issuer_name(x),
			    name, sizeof(name)) == NULL)
				name[0] = '\0';
			set_reason(c, "certificate verify failed: unknown CA (issuer %s)",
			    name[0] ? name : "unknown");
		} else
			set_reason(c, "certificate verify failed: %s (error %d, depth %d)",
			    err > 0 ? wolfSSL_X509_verify_cert_error_string(err) :
			    wolfSSL_ERR_reason_error_string((unsigned long)-err), err, depth);
		return 0;
	}
	if (depth > 0)
		return 1;
	if (x == NULL) {
		set_reason(c, "certificate verify failed: no peer certificate");
		return 0;
	}
	c->leaf_checked = 1;
	if (!check_leaf(c, x, why, sizeof(why))) {
		set_reason(c, "%s", why);
		return 0;
	}
	return 1;
}
