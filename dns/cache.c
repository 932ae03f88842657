/*
 * dns/cache.c - the per-resolver answer cache, keyed by (type, name).
 *
 * One cache per resolver, so per worker thread: no locks.  Entries hold a
 * deep copy of an rrset and an absolute expiry time from the clock (monotonic
 * ms; tests inject their own).  The table is a chained hash plus an LRU list:
 * a full cache drops its least recently used entry, so memory stays bounded
 * by max_entries whatever the traffic.  Expired entries are dropped when met.
 *
 *	dns_cache_new() / dns_cache_free()
 *	dns_cache_get()		borrowed entry, valid until the next put
 *	dns_cache_put()		deep copy; replaces an existing entry
 *
 * Errors: NULL / -1 on out of memory; the cache then simply misses.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dns/dns.h"
#include "dns/dns_internal.h"

struct centry {
	struct centry *hnext;			/* hash chain */
	struct centry *lprev, *lnext;		/* LRU: head is most recent */
	long long expires;
	char	name[256];
	dns_rrset_t rs;
};

struct dns_cache {
	size_t	max, count, nbuckets;
	struct centry **buckets;
	struct centry *lru_head, *lru_tail;
	dns_clock_fn clock;
};

static long long mono_ms(void);
static size_t bucket_of(const dns_cache_t *c, int type, const char *name);
static struct centry **find_slot(dns_cache_t *c, int type, const char *name);
static void lru_unlink(dns_cache_t *c, struct centry *e);
static void lru_push(dns_cache_t *c, struct centry *e);
static void drop(dns_cache_t *c, struct centry **slot);

/* mono_ms - default clock: CLOCK_MONOTONIC in milliseconds */
static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* dns_cache_now - the cache's clock */
long long
dns_cache_now(const dns_cache_t *c)
{
	return c->clock();
}

/* dns_rrset_clear - free an rrset's MX array */
void
dns_rrset_clear(dns_rrset_t *rs)
{
	free(rs->mx);
	rs->mx = NULL;
	rs->nmx = 0;
}

/* dns_rrset_copy - deep copy of src into dst */
int
dns_rrset_copy(dns_rrset_t *dst, const dns_rrset_t *src)
{
	*dst = *src;
	dst->mx = NULL;
	if (src->nmx > 0) {
		dst->mx = calloc(src->nmx, sizeof(*dst->mx));
		if (dst->mx == NULL) {
			dst->nmx = 0;
			return -1;
		}
		memcpy(dst->mx, src->mx, src->nmx * sizeof(*dst->mx));
	}
	return 0;
}

/* dns_cache_new - an empty cache bounded to max_entries */
dns_cache_t *
dns_cache_new(size_t max_entries, dns_clock_fn clock)
{
	dns_cache_t *c;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->max = max_entries ? max_entries : 1;
	/* about two entries a bucket when full */
	c->nbuckets = c->max / 2 + 1;
	c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
	if (c->buckets == NULL) {
		free(c);
		return NULL;
	}
	c->clock = clock ? clock : mono_ms;
	return c;
}

/* dns_cache_free - drop every entry and the table */
void
dns_cache_free(dns_cache_t *c)
{
	struct centry *e, *next;

	if (c == NULL)
		return;
	for (e = c->lru_head; e != NULL; e = next) {
		next = e->lnext;
		dns_rrset_clear(&e->rs);
		free(e);
	}
	free(c->buckets);
	free(c);
}

/* bucket_of - FNV-1a over type and name */
static size_t
bucket_of(const dns_cache_t *c, int type, const char *name)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)type;

	for (; *name; name++) {
		h ^= (unsigned char)*name;
		h *= 1099511628211ULL;
	}
	return (size_t)(h % c->nbuckets);
}

/* find_slot - the chain link pointing at (type, name), or at the chain's end */
static struct centry **
find_slot(dns_cache_t *c, int type, const char *name)
{
	struct centry **slot = &c->buckets[bucket_of(c, type, name)];

	for (; *slot != NULL; slot = &(*slot)->hnext)
		if ((*slot)->rs.type == type && strcmp((*slot)->name, name) == 0)
			break;
	return slot;
}

/* lru_unlink - take e out of the LRU list */
static void
lru_unlink(dns_cache_t *c, struct centry *e)
{
	if (e->lprev)
		e->lprev->lnext = e->lnext;
	else
		c->lru_head = e->lnext;
	if (e->lnext)
		e->lnext->lprev = e->lprev;
	else
		c->lru_tail = e->lprev;
	e->lprev = e->lnext = NULL;
}

/* lru_push - make e the most recently used */
static void
lru_push(dns_cache_t *c, struct centry *e)
{
	e->lprev = NULL;
	e->lnext = c->lru_head;
	if (c->lru_head)
		c->lru_head->lprev = e;
	c->lru_head = e;
	if (c->lru_tail == NULL)
		c->lru_tail = e;
}

/* drop - remove the entry *slot points at */
static void
drop(dns_cache_t *c, struct centry **slot)
{
	struct centry *e = *slot;

	*slot = e->hnext;
	lru_unlink(c, e);
	dns_rrset_clear(&e->rs);
	free(e);
	c->count--;
}

/* dns_cache_get - live entry or NULL */
const dns_rrset_t *
dns_cache_get(dns_cache_t *c, int type, const char *name)
{
	struct centry **slot = find_slot(c, type, name);
	struct centry *e = *slot;

	if (e == NULL)
		return NULL;
	if (c->clock() >= e->expires) {
		drop(c, slot);
		return NULL;
	}
	lru_unlink(c, e);
	lru_push(c, e);
	return &e->rs;
}

/* dns_cache_put - store a copy of rs under (rs->type, name) for ttl s */
int
dns_cache_put(dns_cache_t *c, const char *name, const dns_rrset_t *rs, long ttl)
{
	struct centry **slot, *e;

	if (strlen(name) >= sizeof(e->name))
		return -1;
	slot = find_slot(c, rs->type, name);
	if (*slot != NULL)
		drop(c, slot);
	if (c->count >= c->max) {
		struct centry *old = c->lru_tail;

		drop(c, find_slot(c, old->rs.type, old->name));
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -1;
	if (dns_rrset_copy(&e->rs, rs) == -1) {
		free(e);
		return -1;
	}
	strcpy(e->name, name);
	if (ttl < 1)
		ttl = 1;
	e->expires = c->clock() + (long long)ttl * 1000;
	/* re-find: a drop above may have changed the chain */
	slot = find_slot(c, rs->type, name);
	e->hnext = *slot;
	*slot = e;
	lru_push(c, e);
	c->count++;
	return 0;
}

/* dns_cache_count - entries held (expired ones not yet met included) */
size_t
dns_cache_count(const dns_cache_t *c)
{
	return c->count;
}
