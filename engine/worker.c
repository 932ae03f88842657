/*
 * engine/worker.c - one delivery worker: a thread with its own io_uring,
 * its own c-ares resolver and many SMTP sessions.
 *
 *	eng_worker_start(sh, index, err, errlen)  thread running, or NULL + err
 *	eng_worker_submit(w, job)                 hand a job over (any thread)
 *	eng_worker_stop(w)                        finish in-flight work, then exit
 *	eng_worker_join(w)                        wait for the thread and free w
 *
 * Jobs arrive through the inbox (mutex list + eventfd read on the ring) and
 * wait in per-destination queues until a session is free: an idle session
 * of that destination is reused, or a new one is opened while the
 * destination has fewer than dest_limit sessions in this worker (the
 * configured concurrency divided among workers) and the worker fewer than
 * conn_limit.  Finished jobs go to the queue manager's done queue.
 *
 * The loop never blocks except in io_uring_submit_and_wait_timeout(), whose
 * timeout is the nearest session deadline (a binary heap: O(log n) per
 * change) or the resolver's next timeout.  c-ares sockets are polled on the
 * ring; a generation number in user_data lets a poll for a closed (and
 * maybe reused) fd number be recognised and ignored.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "engine/worker_int.h"
#include "engine/metrics.h"

#define ENG_RING_ENTRIES 1024

static void *worker_main(void *arg);
static void worker_wake_arm(eng_worker_t *w);
static void worker_take_inbox(eng_worker_t *w);
static eng_dest_t *dest_get(eng_worker_t *w, const char *domain);
static void dns_watch_cb(void *arg, int fd, int rd, int wr);
static void dns_watch_arm(eng_worker_t *w, size_t slot);
static void dns_complete(eng_worker_t *w, uint64_t ud, int res);
static void heap_up(eng_worker_t *w, size_t i);
static void heap_down(eng_worker_t *w, size_t i);
static void heap_remove(eng_worker_t *w, eng_session_t *s);
static void timers_run(eng_worker_t *w, int64_t now);
static void release_idle(eng_worker_t *w, eng_dest_t *except);

/* eng_now_ms - CLOCK_MONOTONIC milliseconds */
int64_t
eng_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* eng_jobq_init - an empty queue with its eventfd */
int
eng_jobq_init(eng_jobq_t *q)
{
	memset(q, 0, sizeof(*q));
	if ((q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return -1;
	pthread_mutex_init(&q->lock, NULL);
	return 0;
}

/* eng_jobq_destroy - close the eventfd (jobs left are the caller's) */
void
eng_jobq_destroy(eng_jobq_t *q)
{
	if (q->efd >= 0)
		close(q->efd);
	pthread_mutex_destroy(&q->lock);
}

/* eng_jobq_push - append a job and wake the consumer */
void
eng_jobq_push(eng_jobq_t *q, eng_job_t *job)
{
	uint64_t one = 1;
	int was_empty;

	job->next = NULL;
	pthread_mutex_lock(&q->lock);
	was_empty = q->head == NULL;
	if (q->tail)
		q->tail->next = job;
	else
		q->head = job;
	q->tail = job;
	pthread_mutex_unlock(&q->lock);
	/* One wake-up per batch: the consumer takes the whole list. */
	if (was_empty && write(q->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		abort();
}

/* eng_jobq_take_all - detach the whole list */
eng_job_t *
eng_jobq_take_all(eng_jobq_t *q)
{
	eng_job_t *head;

	pthread_mutex_lock(&q->lock);
	head = q->head;
	q->head = q->tail = NULL;
	pthread_mutex_unlock(&q->lock);
	return head;
}

/* eng_worker_start - create the ring, the resolver and the thread */
eng_worker_t *
eng_worker_start(eng_shared_t *sh, unsigned index, char *err, size_t errlen)
{
	eng_worker_t *w;
	unsigned nw = sh->cfg->workers;
	int rc;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->sh = sh;
	w->cfg = sh->cfg;
	w->index = index;
	w->dest_limit = (sh->cfg->dest_concurrency + nw - 1) / nw;
	w->conn_limit = (sh->cfg->max_connections + nw - 1) / nw;
	for (size_t i = 0; i < sizeof(w->watch) / sizeof(w->watch[0]); i++)
		w->watch[i].fd = -1;
	w->dest_tab_size = 1024;
	w->dest_tab = calloc(w->dest_tab_size, sizeof(*w->dest_tab));
	if (w->dest_tab == NULL || eng_jobq_init(&w->inbox) < 0) {
		snprintf(err, errlen, "out of memory or file descriptors");
		free(w->dest_tab);
		free(w);
		return NULL;
	}
	if ((rc = io_uring_queue_init(ENG_RING_ENTRIES, &w->ring, 0)) < 0) {
		snprintf(err, errlen, "io_uring_queue_init: %s", strerror(-rc));
		goto fail;
	}
	w->dns = dns_resolver_new(sh->cfg, dns_watch_cb, w, err, errlen);
	if (w->dns == NULL) {
		io_uring_queue_exit(&w->ring);
		goto fail;
	}
	if ((rc = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
		snprintf(err, errlen, "pthread_create: %s", strerror(rc));
		dns_resolver_free(w->dns);
		io_uring_queue_exit(&w->ring);
		goto fail;
	}
	return w;
fail:
	eng_jobq_destroy(&w->inbox);
	free(w->dest_tab);
	free(w);
	return NULL;
}

/* eng_worker_submit - hand a job to the worker (called by the qmgr) */
void
eng_worker_submit(eng_worker_t *w, eng_job_t *job)
{
	eng_jobq_push(&w->inbox, job);
}

/* eng_worker_stop - ask the worker to finish what it has and exit */
void
eng_worker_stop(eng_worker_t *w)
{
	uint64_t one = 1;

	__atomic_store_n(&w->stopping, 1, __ATOMIC_RELEASE);
	if (write(w->inbox.efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		abort();
}

/* eng_worker_join - wait for the thread, release everything */
void
eng_worker_join(eng_worker_t *w)
{
	pthread_join(w->thread, NULL);
	for (size_t i = 0; i < w->dest_tab_size; i++) {
		eng_dest_t *d, *next;

		for (d = w->dest_tab[i]; d; d = next) {
			next = d->hnext;
			free(d);
		}
	}
	free(w->dest_tab);
	free(w->heap);
	eng_jobq_destroy(&w->inbox);
	free(w);
}

/* eng_get_sqe - a free SQE, submitting queued ones first if the ring is full */
struct io_uring_sqe *
eng_get_sqe(eng_worker_t *w)
{
	struct io_uring_sqe *sqe;

	while ((sqe = io_uring_get_sqe(&w->ring)) == NULL)
		io_uring_submit(&w->ring);
	return sqe;
}

/* eng_job_finish - give a finished (or untouched) job back to the qmgr */
void
eng_job_finish(eng_worker_t *w, eng_job_t *job)
{
	eng_jobq_push(&w->sh->done, job);
}

/* worker_wake_arm - keep one read of the inbox eventfd in flight */
static void
worker_wake_arm(eng_worker_t *w)
{
	struct io_uring_sqe *sqe = eng_get_sqe(w);

	io_uring_prep_read(sqe, w->inbox.efd, &w->wake_buf, sizeof(w->wake_buf), 0);
	io_uring_sqe_set_data64(sqe, ENG_UD_WAKE);
}

/* worker_take_inbox - move new jobs to their destinations and start them */
static void
worker_take_inbox(eng_worker_t *w)
{
	eng_job_t *job, *next;

	for (job = eng_jobq_take_all(&w->inbox); job; job = next) {
		eng_dest_t *d;

		next = job->next;
		job->next = NULL;
		if (__atomic_load_n(&w->stopping, __ATOMIC_ACQUIRE) ||
		    (d = dest_get(w, job->domain)) == NULL) {
			eng_job_finish(w, job);	/* untouched: attempted = 0 */
			continue;
		}
		if (d->qtail)
			d->qtail->next = job;
		else
			d->qhead = job;
		d->qtail = job;
		eng_dest_schedule(w, d);
	}
}

/* dest_get - the destination record for a domain, created on first use */
static eng_dest_t *
dest_get(eng_worker_t *w, const char *domain)
{
	uint32_t h = 2166136261u;
	eng_dest_t *d;

	for (const char *p = domain; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h &= (uint32_t)(w->dest_tab_size - 1);
	for (d = w->dest_tab[h]; d; d = d->hnext)
		if (strcmp(d->domain, domain) == 0)
			return d;
	/*
	 * Destinations are kept for the worker's life: one record (~300
	 * bytes) per domain seen.  Lookups stay cheap while the number of
	 * domains is within a few times the 1024 buckets.
	 */
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	snprintf(d->domain, sizeof(d->domain), "%s", domain);
	d->hnext = w->dest_tab[h];
	w->dest_tab[h] = d;
	w->ndest++;
	return d;
}

/* eng_dest_pop - the next waiting job of a destination, or NULL */
eng_job_t *
eng_dest_pop(eng_dest_t *d)
{
	eng_job_t *job = d->qhead;

	if (job) {
		d->qhead = job->next;
		if (d->qhead == NULL)
			d->qtail = NULL;
		job->next = NULL;
	}
	return job;
}

/* eng_dest_schedule - give waiting jobs to idle sessions or new ones */
void
eng_dest_schedule(eng_worker_t *w, eng_dest_t *d)
{
	while (d->qhead) {
		eng_session_t *s;

		if (__atomic_load_n(&w->stopping, __ATOMIC_ACQUIRE)) {
			eng_job_finish(w, eng_dest_pop(d));
			continue;
		}
		if ((s = d->idle) != NULL) {
			d->idle = s->next_idle;
			s->next_idle = NULL;
			eng_session_take_job(s, eng_dest_pop(d));
			continue;
		}
		if (d->nsessions >= w->dest_limit)
			break;		/* its own sessions take the next job */
		if (w->nsessions >= w->conn_limit) {
			/* Every connection of this worker is in use: wait in line,
			 * and ask an idle session of another destination to make
			 * room (idle ones otherwise linger for the idle timeout). */
			if (!d->starved) {
				d->starved = 1;
				d->next_starved = NULL;
				if (w->starved_tail)
					w->starved_tail->next_starved = d;
				else
					w->starved = d;
				w->starved_tail = d;
			}
			release_idle(w, d);
			break;
		}
		if ((s = eng_session_new(w, d)) == NULL)
			break;		/* out of memory: try again when one closes */
		eng_session_start(s, eng_dest_pop(d));
	}
}

/* release_idle - quit one idle session of a destination other than
 * `except`, to free a connection slot; O(destinations), only at the limit */
static void
release_idle(eng_worker_t *w, eng_dest_t *except)
{
	for (size_t i = 0; i < w->dest_tab_size; i++)
		for (eng_dest_t *d = w->dest_tab[i]; d; d = d->hnext)
			if (d != except && d->idle) {
				eng_session_quit(d->idle);	/* unlinks it from d->idle */
				return;
			}
}

/* eng_dest_schedule_starved - a connection closed: serve waiting destinations */
void
eng_dest_schedule_starved(eng_worker_t *w)
{
	while (w->starved && w->nsessions < w->conn_limit) {
		eng_dest_t *d = w->starved;

		w->starved = d->next_starved;
		if (w->starved == NULL)
			w->starved_tail = NULL;
		d->next_starved = NULL;
		d->starved = 0;
		eng_dest_schedule(w, d);	/* may queue it again */
	}
}

/*
 * c-ares socket watching.  The state callback may say "stop" for an fd
 * whose poll is in flight: the poll is removed and its completion ignored
 * by generation; c-ares closes the fd right after, and the number may come
 * back for a new socket with a new generation.
 */

/* dns_watch_cb - c-ares wants fd watched for rd/wr, or no more */
static void
dns_watch_cb(void *arg, int fd, int rd, int wr)
{
	eng_worker_t *w = arg;
	size_t n = sizeof(w->watch) / sizeof(w->watch[0]), slot = n, i;
	int mask = (rd ? POLLIN : 0) | (wr ? POLLOUT : 0);

	for (i = 0; i < n; i++) {
		if (w->watch[i].fd == fd) {
			slot = i;
			break;
		}
		if (w->watch[i].fd < 0 && slot == n)
			slot = i;
	}
	if (slot == n) {
		sp_log_msg(SP_LOG_ERROR, "dns", "too many resolver sockets (fd %d)", fd);
		return;
	}
	struct eng_dns_watch *wt = &w->watch[slot];
	if (wt->fd == fd && wt->armed) {
		/* Changing or stopping: remove the old poll; its gen is retired. */
		struct io_uring_sqe *sqe = eng_get_sqe(w);

		io_uring_prep_poll_remove(sqe,
		    ((((uint64_t)slot << 32) | wt->gen) << 3) | ENG_UD_DNS);
		io_uring_sqe_set_data64(sqe, ENG_UD_IGNORE);
		wt->armed = 0;
	}
	wt->gen++;
	if (mask == 0) {
		wt->fd = -1;
		return;
	}
	wt->fd = fd;
	wt->mask = mask;
	dns_watch_arm(w, slot);
}

/* dns_watch_arm - one-shot poll for a watched resolver socket */
static void
dns_watch_arm(eng_worker_t *w, size_t slot)
{
	struct eng_dns_watch *wt = &w->watch[slot];
	struct io_uring_sqe *sqe = eng_get_sqe(w);

	io_uring_prep_poll_add(sqe, wt->fd, (unsigned)wt->mask);
	io_uring_sqe_set_data64(sqe, ((((uint64_t)slot << 32) | wt->gen) << 3) | ENG_UD_DNS);
	wt->armed = 1;
}

/* dns_complete - a resolver socket is ready (or its poll was removed) */
static void
dns_complete(eng_worker_t *w, uint64_t ud, int res)
{
	uint64_t v = ud >> 3;
	size_t slot = (size_t)(v >> 32);
	uint32_t gen = (uint32_t)v;
	struct eng_dns_watch *wt;
	int fd;

	if (slot >= sizeof(w->watch) / sizeof(w->watch[0]))
		return;
	wt = &w->watch[slot];
	if (wt->fd < 0 || wt->gen != gen)
		return;		/* stale: the fd was dropped or re-watched */
	wt->armed = 0;
	fd = wt->fd;
	if (res < 0 && res != -ECANCELED)
		res = POLLIN | POLLOUT;	/* let c-ares see the error itself */
	dns_process_fd(w->dns, fd, (res & (POLLIN | POLLERR | POLLHUP)) != 0,
	    (res & (POLLOUT | POLLERR | POLLHUP)) != 0);
	/* Still watched by the same generation: poll again. */
	if (wt->fd == fd && wt->gen == gen && !wt->armed)
		dns_watch_arm(w, slot);
}

/* Timer heap: sessions ordered by deadline, heap_i is index + 1. */

static int
heap_less(eng_worker_t *w, size_t a, size_t b)
{
	return w->heap[a]->deadline < w->heap[b]->deadline;
}

static void
heap_swap(eng_worker_t *w, size_t a, size_t b)
{
	eng_session_t *t = w->heap[a];

	w->heap[a] = w->heap[b];
	w->heap[b] = t;
	w->heap[a]->heap_i = a + 1;
	w->heap[b]->heap_i = b + 1;
}

static void
heap_up(eng_worker_t *w, size_t i)
{
	while (i > 0 && heap_less(w, i, (i - 1) / 2)) {
		heap_swap(w, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(eng_worker_t *w, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < w->nheap && heap_less(w, l, m))
			m = l;
		if (r < w->nheap && heap_less(w, r, m))
			m = r;
		if (m == i)
			return;
		heap_swap(w, i, m);
		i = m;
	}
}

static void
heap_remove(eng_worker_t *w, eng_session_t *s)
{
	size_t i = s->heap_i - 1;

	s->heap_i = 0;
	w->nheap--;
	if (i == w->nheap)
		return;
	w->heap[i] = w->heap[w->nheap];
	w->heap[i]->heap_i = i + 1;
	heap_down(w, i);
	heap_up(w, i);
}

/* eng_timer_set - (re)arm a session's deadline; 0 disarms */
void
eng_timer_set(eng_session_t *s, int64_t deadline_ms)
{
	eng_worker_t *w = s->w;

	if (s->heap_i)
		heap_remove(w, s);
	s->deadline = deadline_ms;
	if (deadline_ms == 0)
		return;
	if (w->nheap == w->heap_cap) {
		size_t cap = w->heap_cap ? 2 * w->heap_cap : 64;
		eng_session_t **h = realloc(w->heap, cap * sizeof(*h));

		if (h == NULL)
			abort();	/* a few pointers per session: treat as fatal */
		w->heap = h;
		w->heap_cap = cap;
	}
	w->heap[w->nheap] = s;
	s->heap_i = ++w->nheap;
	heap_up(w, w->nheap - 1);
}

/* timers_run - fire every deadline that has passed */
static void
timers_run(eng_worker_t *w, int64_t now)
{
	while (w->nheap > 0 && w->heap[0]->deadline <= now) {
		eng_session_t *s = w->heap[0];

		heap_remove(w, s);
		s->deadline = 0;
		eng_session_timeout(s);
	}
}

/* worker_main - the ring loop */
static void *
worker_main(void *arg)
{
	eng_worker_t *w = arg;
	int stop_seen = 0;

	worker_wake_arm(w);
	for (;;) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts, *tsp = NULL;
		int64_t now = eng_now_ms(), wait = -1;
		unsigned head, seen = 0;
		int dto;

		if (w->nheap > 0)
			wait = w->heap[0]->deadline > now ? w->heap[0]->deadline - now : 0;
		if ((dto = dns_next_timeout_ms(w->dns)) >= 0 && (wait < 0 || dto < wait))
			wait = dto;
		if (wait >= 0) {
			ts.tv_sec = wait / 1000;
			ts.tv_nsec = (wait % 1000) * 1000000;
			tsp = &ts;
		}
		io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, tsp, NULL);

		io_uring_for_each_cqe(&w->ring, head, cqe) {
			uint64_t ud = io_uring_cqe_get_data64(cqe);

			seen++;
			switch (ud & ENG_UD_TAG_MASK) {
			case ENG_UD_OP: {
				eng_op_t *op = io_uring_cqe_get_data(cqe);

				op->inflight = 0;
				op->s->inflight--;
				eng_session_complete(op->s, op, cqe->res);
				break;
			}
			case ENG_UD_DNS:
				dns_complete(w, ud, cqe->res);
				break;
			case ENG_UD_WAKE:
				worker_take_inbox(w);
				worker_wake_arm(w);
				break;
			default:
				break;
			}
		}
		io_uring_cq_advance(&w->ring, seen);

		now = eng_now_ms();
		if (dns_pending(w->dns) > 0 && dns_next_timeout_ms(w->dns) == 0)
			dns_process_timeout(w->dns);
		timers_run(w, now);
		{
			dns_stats_t ds;

			dns_resolver_stats(w->dns, &ds);
			eng_metrics_dns(ds.lookups - w->dns_lookups_seen,
			    ds.cache_hits - w->dns_hits_seen);
			w->dns_lookups_seen = ds.lookups;
			w->dns_hits_seen = ds.cache_hits;
		}

		if (__atomic_load_n(&w->stopping, __ATOMIC_ACQUIRE)) {
			if (!stop_seen) {
				/* Hand back what never started; quit idle sessions. */
				stop_seen = 1;
				worker_take_inbox(w);
				for (size_t i = 0; i < w->dest_tab_size; i++)
					for (eng_dest_t *d = w->dest_tab[i]; d; d = d->hnext) {
						eng_dest_schedule(w, d);
						while (d->idle) {
							eng_session_t *s = d->idle;

							d->idle = s->next_idle;
							s->next_idle = NULL;
							eng_session_quit(s);
						}
					}
			}
			if (w->nsessions == 0)
				break;
		}
	}
	worker_take_inbox(w);
	dns_resolver_free(w->dns);
	io_uring_queue_exit(&w->ring);
	tls_thread_cleanup();	/* wolfSSL's per-thread ECC cache */
	return NULL;
}
