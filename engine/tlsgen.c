/*
 * engine/tlsgen.c - TLS generations: the client context, the policy table
 * and the default policy, built together, shared read-only by all workers,
 * replaced as a whole on SIGHUP.
 *
 *	eng_tls_gen_new(cfg, err, errlen)  a new generation (refs = 1), or NULL + err
 *	eng_tls_publish(sh, g)             make g current; drops the previous one's
 *	                                   publication reference
 *	eng_tls_acquire(sh)                the current generation, referenced (never NULL
 *	                                   once one was published)
 *	eng_tls_release(g)                 drop a reference; the last one frees
 *
 * A session acquires the generation when it starts and releases it when it
 * is freed, so a reload never changes the context or policy under a
 * session in flight (its tls_conn_t and its policy pointer stay valid);
 * new sessions use the new ones.  acquire and publish take a mutex: once
 * per session, never per byte.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/eng_internal.h"

/* eng_tls_gen_new - read certificates, CA store and policy file */
eng_tls_gen_t *
eng_tls_gen_new(const sp_config_t *cfg, char *err, size_t errlen)
{
	eng_tls_gen_t *g = calloc(1, sizeof(*g));

	if (g == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	g->refs = 1;
	g->dflt.level = cfg->tls_level;
	if ((g->ctx = tls_ctx_new_client(cfg, err, errlen)) == NULL) {
		free(g);
		return NULL;
	}
	if (cfg->tls_policy[0] && tls_policy_load(cfg->tls_policy, &g->policy, err, errlen) < 0) {
		tls_ctx_free(g->ctx);
		free(g);
		return NULL;
	}
	return g;
}

/* eng_tls_release - drop one reference; the last one frees */
void
eng_tls_release(eng_tls_gen_t *g)
{
	if (g == NULL || __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	if (g->policy)
		tls_policy_free(g->policy);
	tls_ctx_free(g->ctx);
	free(g);
}

/* eng_tls_publish - g becomes current (the caller's reference moves in) */
void
eng_tls_publish(eng_shared_t *sh, eng_tls_gen_t *g)
{
	eng_tls_gen_t *old;

	pthread_mutex_lock(&sh->gen_lock);
	old = sh->gen;
	sh->gen = g;
	pthread_mutex_unlock(&sh->gen_lock);
	eng_tls_release(old);
}

/* eng_tls_acquire - the current generation, with a reference for the caller */
eng_tls_gen_t *
eng_tls_acquire(eng_shared_t *sh)
{
	eng_tls_gen_t *g;

	pthread_mutex_lock(&sh->gen_lock);
	g = sh->gen;
	if (g)
		__atomic_add_fetch(&g->refs, 1, __ATOMIC_ACQ_REL);
	pthread_mutex_unlock(&sh->gen_lock);
	return g;
}
