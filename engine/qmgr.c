/*
 * engine/qmgr.c - the queue manager: the engine's main thread.
 *
 *	eng_run(cfg, drain)	run until SIGTERM/SIGINT, or with drain until
 *				nothing due remains; returns a sysexits code
 *
 * It owns the spool and every q_msg_t.  New files are noticed through
 * inotify on spool/new (read on this thread's own io_uring), plus a scan at
 * start and every SEALPOST_SCAN_INTERVAL as a safety net; the cost of
 * noticing a file does not depend on how many messages are deferred, since
 * deferred ones live in a heap ordered by next attempt and are not looked
 * at until due.  Claimed messages are cut into jobs (one domain, at most
 * SEALPOST_RCPTS_PER_TRANSACTION recipients) and handed to the workers;
 * finished jobs come back through a done queue, their outcomes are logged
 * (one line per recipient) and recorded, and the message is removed once
 * every recipient is final, or written back with its next attempt time.
 *
 * Memory stays bounded: at most `max_inflight` messages are held in memory
 * (their content included); beyond that, new files wait in spool/new (their
 * names in a bounded FIFO, then a rescan) and due deferred ones in the heap
 * (an id and a time each).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/signalfd.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "engine/engine.h"
#include "engine/eng_internal.h"
#include "engine/metrics.h"

#define UD_INOTIFY	1
#define UD_DONE		2
#define UD_SIGNAL	3
#define BACKLOG_MAX	100000	/* new-file names remembered; beyond, rescan */
#define RECOVER_BATCH	512	/* queued messages examined per loop turn at start */
#define RECOVER_SLICE	0.005	/* ... or fewer when that takes longer (s) */
#define DSN_MAX_FULL	(512 * 1024)	/* RET=FULL returns at most this much */
#define SUSPEND_AFTER	5	/* consecutive connection/TLS failures before suspending */
#define SUSPEND_MIN	30	/* first suspension, seconds; doubles up to retry_min */
#define SUSPEND_TAB	1024	/* buckets of the failing-destination table */

struct eng_msg {
	q_msg_t	*q;
	unsigned jobs_out;
	int	changed;		/* some recipient got an outcome this attempt */
};

/*
 * A destination that keeps failing at connection or TLS level.  Only
 * failing domains have an entry (a success removes it), so the table is as
 * large as the set of broken destinations, not of all destinations.
 */
typedef struct dest_fail {
	struct dest_fail *next;
	char	domain[256];
	unsigned failures;		/* consecutive */
	unsigned suspensions;		/* consecutive suspensions, for backoff */
	int64_t	until;			/* suspended until (unix s), 0 = not */
	char	why[ENG_TEXT_MAX];	/* the last failure */
} dest_fail_t;

typedef struct due_ent {
	int64_t	due;			/* unix seconds */
	char	id[Q_ID_LEN];
} due_ent_t;

typedef struct qmgr {
	const sp_config_t *cfg;
	int	drain;
	q_spool_t *sp;
	eng_shared_t sh;
	eng_worker_t **workers;
	unsigned nworkers, next_worker;
	struct io_uring ring;
	int	ifd, wd_new, wd_root, sfd;
	char	ibuf[64 * 1024] __attribute__((aligned(8)));
	uint64_t done_buf;
	struct signalfd_siginfo sig;
	int	stopping;

	/* new files not yet claimed */
	char	**backlog;
	size_t	bhead, btail, bcount, bcap;
	int	rescan;			/* backlog overflowed: scan new/ again */
	int64_t	next_scan;

	/* queued messages found at start, examined in batches */
	char	(*recover)[Q_ID_LEN];	/* flat: 24 bytes an id, no malloc each */
	size_t	nrecover, recover_i, recover_cap;
	size_t	prefetched;		/* recover[0..prefetched) asked of the disk */
	int	recovered;		/* the end of recovery was logged */
	int	scanned;		/* msg/ was listed and recover[] filled */
	int	scan_started;		/* the listing was started */
	int	scan_threaded;		/* ... on scan_thread, not joined yet */
	pthread_t scan_thread;
	atomic_int scan_done;		/* set by the listing thread at its end */
	char	(*t_recover)[Q_ID_LEN];	/* the listing thread's own list */
	size_t	t_nrecover, t_cap;
	char	(*early)[Q_ID_LEN];	/* ids claimed before that listing */
	size_t	nearly, early_cap;
	struct timespec recover_t0;	/* start of the scan of msg/ */
	double	recover_scan;		/* seconds the scan took */

	/* deferred messages, min-heap by due time */
	due_ent_t *heap;
	size_t	nheap, heap_cap;
	int64_t	oldest;			/* claim time of the oldest id in the heap */
	int	oldest_stale;		/* it was popped: walk the heap again */

	dest_fail_t *fail_tab[SUSPEND_TAB];

	/* outcomes waiting for the spool to accept their state (disk full) */
	struct held {
		q_msg_t	*q;
		int64_t	due;
	} *held;
	size_t	nheld, held_cap;
	int64_t	held_retry;

	unsigned inflight, max_inflight;
	uint64_t delivered, deferred, bounced;
} qmgr_t;

static int qmgr_init(qmgr_t *m, char *err, size_t errlen);
static void qmgr_fini(qmgr_t *m);
static void arm_inotify(qmgr_t *m);
static void arm_done(qmgr_t *m);
static void arm_signal(qmgr_t *m);
static void on_inotify(qmgr_t *m, int res);
static void backlog_add(qmgr_t *m, const char *name);
static void scan_new_cb(void *arg, const char *name);
static void recover_cb(void *arg, const char *id);
static void recover_prefetch(qmgr_t *m, size_t from, size_t to);
static void recover_scan(qmgr_t *m);
static void *recover_scan_main(void *arg);
static void recover_scan_finish(qmgr_t *m, const char *also);
static int id_cmp(const void *a, const void *b);
static int early_add(qmgr_t *m, const char *id);
static void pump(qmgr_t *m);
static void claim_one(qmgr_t *m, const char *name);
static void dispatch(qmgr_t *m, q_msg_t *q);
static void on_done(qmgr_t *m);
static void attempt_over(qmgr_t *m, eng_msg_t *em);
static void log_outcome(qmgr_t *m, const q_msg_t *q, const eng_job_t *job, size_t j,
			const q_rcpt_t *r);
static void heap_push(qmgr_t *m, int64_t due, const char *id);
static void heap_pop(qmgr_t *m);
static int64_t id_time(const char *id);
static void flush_all(qmgr_t *m);
static void reload(qmgr_t *m);
static void clean_tmp(qmgr_t *m);
static int record_or_hold(qmgr_t *m, q_msg_t *q, int64_t due);
static void retry_held(qmgr_t *m, int64_t now);
static int dsn_needed(const q_msg_t *q, const q_rcpt_t *r, enum q_dsn_action *action);
static int dsn_send(qmgr_t *m, q_msg_t *q, int64_t now);
static int64_t now_s(void);
static double elapsed_s(const struct timespec *t0);
static void queue_gauges(qmgr_t *m);
static dest_fail_t *dest_fail_get(qmgr_t *m, const char *domain, int create);
static void dest_result(qmgr_t *m, const eng_job_t *job, int64_t now);
static int dest_suspended(qmgr_t *m, eng_job_t *job, int64_t now);

/* queue_gauges - sealpost_queue_* after every loop turn.  The oldest
 * deferred message (ids start with the claim time) is kept up to date by
 * heap_push; only when heap_pop takes that very message out is the heap
 * walked again, at most once a second.  Walking it every second cost
 * 20-30 ms a second with 1,000,000 deferred messages, in one loop turn,
 * which new mail waited for. */
static void
queue_gauges(qmgr_t *m)
{
	static int64_t last;
	int64_t now = now_s();

	if (m->cfg->metrics_listen[0] == '\0')
		return;
	if (m->oldest_stale && now != last) {
		last = now;
		m->oldest_stale = 0;
		m->oldest = 0;
		for (size_t i = 0; i < m->nheap; i++) {
			int64_t t = id_time(m->heap[i].id);

			if (t > 0 && (m->oldest == 0 || t < m->oldest))
				m->oldest = t;
		}
	}
	eng_metrics_queue(m->inflight, m->nheap, m->bcount, m->oldest);
}

/* id_time - claim time (unix s) from a queue id's first 13 hex digits */
static int64_t
id_time(const char *id)
{
	char hex[14];

	memcpy(hex, id, 13);
	hex[13] = '\0';
	return (int64_t)(strtoull(hex, NULL, 16) / 1000000);
}

/* now_s - wall-clock seconds, for the spool's times */
static int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

/* elapsed_s - monotonic seconds since t0 */
static double
elapsed_s(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* eng_run - `sealpost run [--drain]` */
int
eng_run(const sp_config_t *cfg, int drain)
{
	qmgr_t *m;
	char err[512];
	int rc = EX_OK;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		sp_log_msg(SP_LOG_ERROR, "startup", "out of memory");
		return EX_OSERR;
	}
	m->cfg = cfg;
	m->drain = drain;
	if (qmgr_init(m, err, sizeof(err)) < 0) {
		sp_log_msg(SP_LOG_ERROR, "startup", "%s", err);
		qmgr_fini(m);
		free(m);
		return EX_CONFIG;
	}
	sp_log_msg(SP_LOG_INFO, "startup", "sealpost running: spool=%s workers=%u drain=%s",
	    cfg->spool, m->nworkers, drain ? "yes" : "no");

	for (;;) {
		struct io_uring_cqe *cqe;
		struct __kernel_timespec ts, *tsp = NULL;
		unsigned head, seen = 0;
		int64_t wait_ms = -1, now;

		pump(m);
		queue_gauges(m);
		if (m->stopping && m->inflight == 0)
			break;
		if (m->drain && !m->stopping && m->inflight == 0 && m->bcount == 0 &&
		    m->nheld == 0 &&
		    !m->rescan && m->scanned && m->recover_i >= m->nrecover &&
		    (m->nheap == 0 || m->heap[0].due > now_s())) {
			/* Last look: anything dropped meanwhile is due too. */
			q_scan_new(m->sp, scan_new_cb, m);
			if (m->bcount == 0 && !m->rescan)
				break;
			continue;
		}
		now = now_s();
		if (m->nheap > 0 && !m->stopping)
			wait_ms = m->heap[0].due > now ? (m->heap[0].due - now) * 1000 : 1000;
		{
			int64_t to_scan = (m->next_scan - now) * 1000;

			if (to_scan < 0)
				to_scan = 0;
			if (wait_ms < 0 || to_scan < wait_ms)
				wait_ms = to_scan;
		}
		if (m->recover_i < m->nrecover)
			wait_ms = 0;
		if (!m->scanned && (wait_ms < 0 || wait_ms > 5))
			wait_ms = 5;	/* look at the listing thread soon */
		if (m->nheld > 0 && (wait_ms < 0 || wait_ms > 1000))
			wait_ms = 1000;
		ts.tv_sec = wait_ms / 1000;
		ts.tv_nsec = (wait_ms % 1000) * 1000000;
		tsp = &ts;
		io_uring_submit_and_wait_timeout(&m->ring, &cqe, wait_ms == 0 ? 0 : 1, tsp, NULL);
		io_uring_for_each_cqe(&m->ring, head, cqe) {
			seen++;
			switch (io_uring_cqe_get_data64(cqe)) {
			case UD_INOTIFY:
				on_inotify(m, cqe->res);
				arm_inotify(m);
				break;
			case UD_DONE:
				on_done(m);
				arm_done(m);
				break;
			case UD_SIGNAL:
				if (cqe->res == (int)sizeof(m->sig) && m->sig.ssi_signo == SIGHUP) {
					reload(m);
				} else if (cqe->res == (int)sizeof(m->sig)) {
					if (m->stopping) {
						sp_log_msg(SP_LOG_WARN, "shutdown",
						    "second signal: exiting now; in-flight "
						    "messages stay queued");
						_exit(EX_TEMPFAIL);
					}
					sp_log_msg(SP_LOG_INFO, "shutdown",
					    "signal %u: finishing transactions in flight",
					    m->sig.ssi_signo);
					m->stopping = 1;
					for (unsigned i = 0; i < m->nworkers; i++)
						eng_worker_stop(m->workers[i]);
				}
				arm_signal(m);
				break;
			}
		}
		io_uring_cq_advance(&m->ring, seen);
		on_done(m);	/* cheap: results that raced with the eventfd read */
	}
	sp_log_msg(SP_LOG_INFO, "shutdown", "delivered=%llu deferred=%llu bounced=%llu",
	    (unsigned long long)m->delivered, (unsigned long long)m->deferred,
	    (unsigned long long)m->bounced);
	{
		tls_stats_t ts;

		/* Counted by the current generation: since start or the last reload. */
		tls_ctx_stats(m->sh.gen->ctx, &ts);
		sp_log_msg(SP_LOG_INFO, "tls_stats", "full=%llu resumed=%llu failed=%llu",
		    (unsigned long long)ts.full, (unsigned long long)ts.resumed,
		    (unsigned long long)ts.failed);
	}
	qmgr_fini(m);
	free(m);
	return rc;
}

/* qmgr_init - spool, TLS context, policy, ring, inotify, signals, workers */
static int
qmgr_init(qmgr_t *m, char *err, size_t errlen)
{
	const sp_config_t *cfg = m->cfg;
	sigset_t ss;
	int rc;

	m->ifd = m->sfd = -1;
	/*
	 * One message per possible connection plus a little slack keeps every
	 * session fed (a finished job frees a slot and the next is dispatched
	 * within one loop turn).  More only costs memory and cache: measured
	 * on 8000 x 82 KB messages, 2064 in flight gave 261 MB peak RSS, 256
	 * gave 66 MB, at the same or better throughput.
	 */
	m->max_inflight = cfg->max_connections + 64;
	if (q_spool_open(&m->sp, cfg->spool, err, errlen) != Q_OK)
		return -1;
	m->sh.cfg = cfg;
	if (eng_jobq_init(&m->sh.done) < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -1;
	}
	pthread_mutex_init(&m->sh.gen_lock, NULL);
	{
		eng_tls_gen_t *g = eng_tls_gen_new(cfg, err, errlen);

		if (g == NULL)
			return -1;
		eng_tls_publish(&m->sh, g);
	}
	if ((rc = io_uring_queue_init(64, &m->ring, 0)) < 0) {
		snprintf(err, errlen, "io_uring_queue_init: %s", strerror(-rc));
		return -1;
	}
	if ((m->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0 ||
	    (m->wd_new = inotify_add_watch(m->ifd, q_spool_dir(m->sp, "new"),
	    IN_MOVED_TO | IN_CLOSE_WRITE)) < 0 ||
	    (m->wd_root = inotify_add_watch(m->ifd, cfg->spool, IN_MOVED_TO | IN_CLOSE_WRITE)) < 0) {
		snprintf(err, errlen, "inotify on %.256s: %s", cfg->spool, strerror(errno));
		return -1;
	}
	/* Signals arrive as data on the ring; workers inherit the mask. */
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);
	if ((m->sfd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		snprintf(err, errlen, "signalfd: %s", strerror(errno));
		return -1;
	}
	m->workers = calloc(cfg->workers, sizeof(*m->workers));
	if (m->workers == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (unsigned i = 0; i < cfg->workers; i++) {
		if ((m->workers[i] = eng_worker_start(&m->sh, i, err, errlen)) == NULL)
			return -1;
		m->nworkers++;
	}
	arm_inotify(m);
	arm_done(m);
	arm_signal(m);
	clean_tmp(m);
	/* Start-up: new/ first, claimed in the first loop turn; what is
	 * already queued is listed after that (recover_scan) and examined in
	 * batches. */
	clock_gettime(CLOCK_MONOTONIC, &m->recover_t0);
	q_scan_new(m->sp, scan_new_cb, m);
	m->next_scan = now_s() + cfg->scan_interval;
	if (eng_metrics_start(cfg, err, errlen) < 0)
		return -1;
	return 0;
}

/* qmgr_fini - stop workers (if any still run) and release everything */
static void
qmgr_fini(qmgr_t *m)
{
	eng_metrics_stop();
	for (unsigned i = 0; i < m->nworkers; i++) {
		eng_worker_stop(m->workers[i]);
		eng_worker_join(m->workers[i]);
	}
	free(m->workers);
	if (m->ring.ring_fd > 0)
		io_uring_queue_exit(&m->ring);
	if (m->ifd >= 0)
		close(m->ifd);
	if (m->sfd >= 0)
		close(m->sfd);
	while (m->bcount > 0) {
		free(m->backlog[m->bhead]);
		m->bhead = (m->bhead + 1) % m->bcap;
		m->bcount--;
	}
	free(m->backlog);
	if (m->scan_threaded)
		pthread_join(m->scan_thread, NULL);
	free(m->t_recover);
	free(m->recover);
	free(m->early);
	m->held_retry = 0;
	retry_held(m, now_s());	/* a last try; what still fails is re-sent later */
	for (size_t i = 0; i < m->nheld; i++)
		q_msg_free(m->held[i].q);
	free(m->held);
	free(m->heap);
	for (size_t i = 0; i < SUSPEND_TAB; i++)
		while (m->fail_tab[i]) {
			dest_fail_t *f = m->fail_tab[i];

			m->fail_tab[i] = f->next;
			free(f);
		}
	eng_tls_publish(&m->sh, NULL);	/* workers are gone: this frees it */
	if (m->sh.done.efd > 0)
		eng_jobq_destroy(&m->sh.done);
	q_spool_close(m->sp);
}

static void
arm_inotify(qmgr_t *m)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&m->ring);

	io_uring_prep_read(sqe, m->ifd, m->ibuf, sizeof(m->ibuf), 0);
	io_uring_sqe_set_data64(sqe, UD_INOTIFY);
}

static void
arm_done(qmgr_t *m)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&m->ring);

	io_uring_prep_read(sqe, m->sh.done.efd, &m->done_buf, sizeof(m->done_buf), 0);
	io_uring_sqe_set_data64(sqe, UD_DONE);
}

static void
arm_signal(qmgr_t *m)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&m->ring);

	io_uring_prep_read(sqe, m->sfd, &m->sig, sizeof(m->sig), 0);
	io_uring_sqe_set_data64(sqe, UD_SIGNAL);
}

/* on_inotify - new files in new/, or a flush request in the root */
static void
on_inotify(qmgr_t *m, int res)
{
	size_t off = 0;

	if (res < 0) {
		if (res != -EAGAIN && res != -EINTR)
			sp_log_msg(SP_LOG_ERROR, "pickup", "inotify read: %s", strerror(-res));
		return;
	}
	while (off + sizeof(struct inotify_event) <= (size_t)res) {
		const struct inotify_event *ev = (const void *)(m->ibuf + off);

		off += sizeof(*ev) + ev->len;
		if (ev->mask & IN_Q_OVERFLOW) {
			m->rescan = 1;	/* events were lost: look at the folder */
			continue;
		}
		if (ev->len == 0 || ev->name[0] == '.')
			continue;
		if (ev->wd == m->wd_new)
			backlog_add(m, ev->name);
		else if (ev->wd == m->wd_root && strcmp(ev->name, Q_FLUSH_FILE) == 0)
			flush_all(m);
	}
}

/* backlog_add - remember a new file to claim (bounded; overflow rescans) */
static void
backlog_add(qmgr_t *m, const char *name)
{
	char *copy;

	if (m->bcount == m->bcap) {
		size_t cap = m->bcap ? 2 * m->bcap : 1024;
		char **b;

		if (cap > BACKLOG_MAX || (b = malloc(cap * sizeof(*b))) == NULL) {
			m->rescan = 1;
			return;
		}
		for (size_t i = 0; i < m->bcount; i++)
			b[i] = m->backlog[(m->bhead + i) % m->bcap];
		free(m->backlog);
		m->backlog = b;
		m->bhead = 0;
		m->btail = m->bcount;
		m->bcap = cap;
	}
	if ((copy = strdup(name)) == NULL) {
		m->rescan = 1;
		return;
	}
	m->backlog[m->btail] = copy;
	m->btail = (m->btail + 1) % m->bcap;
	m->bcount++;
}

static void
scan_new_cb(void *arg, const char *name)
{
	backlog_add(arg, name);
}

/* recover_cb - a message already queued at start */
static void
recover_cb(void *arg, const char *id)
{
	qmgr_t *m = arg;

	/* On the listing thread: only t_* are touched here. */
	if (m->t_nrecover == m->t_cap) {
		size_t cap = m->t_cap ? 2 * m->t_cap : 4096;
		char (*r)[Q_ID_LEN] = realloc(m->t_recover, cap * sizeof(*r));

		if (r == NULL)
			return;		/* examined on a later start */
		m->t_recover = r;
		m->t_cap = cap;
	}
	snprintf(m->t_recover[m->t_nrecover++], Q_ID_LEN, "%s", id);
}

/* clean_tmp - remove files a writer abandoned in tmp/ (a crash mid-write:
 * ours while queueing a DSN, or the pipeline's) once they are a day old,
 * like Postfix's postsuper; younger ones may still be being written */
static void
clean_tmp(qmgr_t *m)
{
	const char *dir = q_spool_dir(m->sp, "tmp");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *e;
	time_t cutoff = time(NULL) - 86400;

	if (d == NULL) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		struct stat st;

		if (e->d_name[0] == '.' || fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || st.st_mtime >= cutoff)
			continue;
		if (unlinkat(dfd, e->d_name, 0) == 0)
			sp_log_msg(SP_LOG_INFO, "cleanup", "removed abandoned tmp/%s", e->d_name);
	}
	closedir(d);
}

/* id_cmp - order of queue ids (qsort/bsearch) */
static int
id_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* early_add - remember an id claimed before msg/ is listed; -1 no memory */
static int
early_add(qmgr_t *m, const char *id)
{
	if (m->nearly == m->early_cap) {
		size_t cap = m->early_cap ? 2 * m->early_cap : 256;
		char (*e)[Q_ID_LEN] = realloc(m->early, cap * sizeof(*e));

		if (e == NULL)
			return -1;
		m->early = e;
		m->early_cap = cap;
	}
	snprintf(m->early[m->nearly++], Q_ID_LEN, "%s", id);
	return 0;
}

/*
 * recover_scan - start listing msg/ for recovery, on a thread of its own:
 * listing 1,000,000 queued messages takes 1-2 s (a cold directory more),
 * and new mail must not wait for it.  The loop keeps claiming meanwhile;
 * every id it claims until the listing is taken over (recover_scan_finish)
 * is remembered in early[], and removed from the listing then: such a
 * message is in flight or in the heap already.  An id claimed after that
 * cannot be in the listing, which was complete before.  q_scan_queue's
 * removal of orphan state files is safe beside a running engine (it checks
 * each file when it removes it).
 */
static void
recover_scan(qmgr_t *m)
{
	m->scan_started = 1;
	if (pthread_create(&m->scan_thread, NULL, recover_scan_main, m) == 0)
		m->scan_threaded = 1;
	else
		recover_scan_main(m);	/* no thread: list it here */
}

/* recover_scan_main - the listing thread: q_scan_queue into t_recover */
static void *
recover_scan_main(void *arg)
{
	qmgr_t *m = arg;
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	q_scan_queue(m->sp, recover_cb, m);
	m->recover_scan = elapsed_s(&t0);
	atomic_store_explicit(&m->scan_done, 1, memory_order_release);
	return NULL;
}

/* recover_scan_finish - take the listing over (joining its thread), minus
 * the ids claimed meanwhile (early[], and `also` when not NULL) */
static void
recover_scan_finish(qmgr_t *m, const char *also)
{
	size_t k = 0;

	if (m->scanned)
		return;
	if (m->scan_threaded) {
		pthread_join(m->scan_thread, NULL);
		m->scan_threaded = 0;
	}
	m->scanned = 1;
	if (m->nearly > 1)
		qsort(m->early, m->nearly, sizeof(*m->early), id_cmp);
	for (size_t i = 0; i < m->t_nrecover; i++) {
		const char *id = m->t_recover[i];

		if ((m->nearly > 0 && bsearch(id, m->early, m->nearly, sizeof(*m->early),
		    id_cmp) != NULL) || (also != NULL && strcmp(id, also) == 0))
			continue;	/* claimed by this run */
		if (k != i)
			memcpy(m->t_recover[k], id, Q_ID_LEN);
		k++;
	}
	m->recover = m->t_recover;
	m->nrecover = k;
	m->recover_cap = m->t_cap;
	m->recover_i = m->prefetched = 0;
	m->t_recover = NULL;
	m->t_nrecover = m->t_cap = 0;
	free(m->early);
	m->early = NULL;
	m->nearly = m->early_cap = 0;
}

/*
 * recover_prefetch - ask the kernel to read the files of recover[from..to)
 * before q_load_state reads them one by one.  After a reboot (or once the
 * page cache has let them go) every message costs two small random reads,
 * and read one at a time each waits a full device round trip: measured on
 * 1,000,000 queued messages, 242 s of start-up, nearly all of it waiting
 * for the disk.  POSIX_FADV_WILLNEED starts the reads without waiting, so
 * a batch is read with many requests in flight.  Only the first 16 KB of
 * msg/ID (what q_load_state reads: the envelope, never the attachment).
 * Errors do not matter here: q_load_state reports them.
 */
static void
recover_prefetch(qmgr_t *m, size_t from, size_t to)
{
	static const char *const sub[2] = { "msg", "state" };

	for (int d = 0; d < 2; d++) {
		int dfd = open(q_spool_dir(m->sp, sub[d]), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd < 0)
			continue;
		for (size_t i = from; i < to; i++) {
			int fd = openat(dfd, m->recover[i], O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
			    O_CLOEXEC);

			if (fd < 0)
				continue;
			(void)posix_fadvise(fd, 0, d == 0 ? 16384 : 0, POSIX_FADV_WILLNEED);
			close(fd);
		}
		close(dfd);
	}
}

/* reload - SIGHUP: certificates, CA store and policy file read again; new
 * sessions use them, sessions in flight keep theirs */
static void
reload(qmgr_t *m)
{
	char err[512];
	eng_tls_gen_t *g = eng_tls_gen_new(m->cfg, err, sizeof(err));

	if (g == NULL) {
		sp_log_msg(SP_LOG_ERROR, "reload", "kept the current TLS settings: %s", err);
		return;
	}
	eng_tls_publish(&m->sh, g);
	sp_log_msg(SP_LOG_INFO, "reload", "TLS certificates, CA store and policy reloaded");
}

/* flush_all - `sealpost flush`: every deferred message is due now */
static void
flush_all(qmgr_t *m)
{
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/%s", m->cfg->spool, Q_FLUSH_FILE);
	unlink(path);
	for (size_t i = 0; i < m->nheap; i++)
		m->heap[i].due = 0;	/* all equal: still a heap */
	sp_log_msg(SP_LOG_INFO, "flush", "%zu deferred messages made due", m->nheap);
}

/* pump - claim new files and load due messages while there is room */
static void
pump(qmgr_t *m)
{
	int64_t now = now_s();
	struct timespec slice;

	retry_held(m, now);
	if (m->stopping || m->nheld > 0)
		return;		/* stopping, or the spool takes no state writes */
	/*
	 * Start-up recovery, a batch per turn (and at most RECOVER_SLICE of
	 * it) so new mail is not held up; the disk is asked for the files one
	 * batch ahead, so their reads overlap the loading of this one.
	 */
	if (m->recover_i < m->nrecover) {
		size_t ahead = m->recover_i + 2 * RECOVER_BATCH;

		if (ahead > m->nrecover)
			ahead = m->nrecover;
		if (m->prefetched < m->recover_i)
			m->prefetched = m->recover_i;
		if (m->prefetched < ahead) {
			recover_prefetch(m, m->prefetched, ahead);
			m->prefetched = ahead;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &slice);
	for (size_t n = 0; n < RECOVER_BATCH && m->recover_i < m->nrecover; n++) {
		const char *id = m->recover[m->recover_i++];
		q_msg_t *q = NULL;
		char why[256];

		if (n % 32 == 31 && elapsed_s(&slice) > RECOVER_SLICE)
			n = RECOVER_BATCH;	/* this one, then the loop turns */

		if (q_load_state(m->sp, id, &q, why, sizeof(why)) == Q_OK) {
			int report = 0;

			for (size_t i = 0; i < q->nrcpt && !report; i++)
				report = dsn_needed(q, &q->rcpt[i], NULL);
			if (report) {
				/* A failure recorded before its DSN was queued
				 * (a crash in between): report it now. */
				heap_push(m, 0, id);
			} else if (q_msg_final(q)) {
				if (q_done(m->sp, q, why, sizeof(why)) != Q_OK)
					sp_log_msg(SP_LOG_ERROR, "recover", "id=%s: %s", id, why);
			} else {
				heap_push(m, q_msg_next_attempt(q), id);
			}
			q_msg_free(q);
		} else {
			sp_log_msg(SP_LOG_ERROR, "recover", "id=%s: %s", id, why);
		}
	}
	if (!m->recovered && m->scanned && m->recover_i >= m->nrecover) {
		sp_logline_t l;

		/* One line, so that operators (and bench/bigqueue.sh) see what a
		 * restart with a large queue cost. */
		m->recovered = 1;
		if (sp_log_begin(&l, SP_LOG_INFO, "recovered")) {
			sp_log_int(&l, "messages", (long long)m->nrecover);
			sp_log_int(&l, "deferred", (long long)m->nheap);
			sp_log_fmt(&l, "scan_s", "%.3f", m->recover_scan);
			sp_log_fmt(&l, "total_s", "%.3f", elapsed_s(&m->recover_t0));
			sp_log_end(&l);
		}
		free(m->recover);
		m->recover = NULL;
		m->nrecover = m->recover_i = m->recover_cap = m->prefetched = 0;
	}
	if (now >= m->next_scan || (m->rescan && m->bcount == 0)) {
		m->rescan = 0;
		m->next_scan = now + m->cfg->scan_interval;
		q_scan_new(m->sp, scan_new_cb, m);
	}
	while (m->bcount > 0 && m->inflight < m->max_inflight) {
		char *name = m->backlog[m->bhead];

		m->bhead = (m->bhead + 1) % m->bcap;
		m->bcount--;
		claim_one(m, name);
		free(name);
	}
	if (!m->scan_started)
		recover_scan(m);	/* once, after the first claims */
	else if (!m->scanned &&
	    atomic_load_explicit(&m->scan_done, memory_order_acquire) != 0)
		recover_scan_finish(m, NULL);
	while (m->nheap > 0 && m->heap[0].due <= now && m->inflight < m->max_inflight) {
		char id[Q_ID_LEN], why[256];
		q_msg_t *q = NULL;

		memcpy(id, m->heap[0].id, sizeof(id));
		heap_pop(m);
		if (q_load(m->sp, id, &q, why, sizeof(why)) != Q_OK) {
			sp_log_msg(SP_LOG_ERROR, "load", "id=%s: %s", id, why);
			continue;
		}
		dispatch(m, q);
	}
}

/* claim_one - take one file from new/ into the queue and dispatch it */
static void
claim_one(qmgr_t *m, const char *name)
{
	q_msg_t *q = NULL;
	char why[512];
	sp_logline_t l;
	int rc = q_claim(m->sp, name, &q, why, sizeof(why));

	switch (rc) {
	case Q_OK:
		if (sp_log_begin(&l, SP_LOG_INFO, "queued")) {
			sp_log_str(&l, "id", q->id);
			sp_log_str(&l, "from", q->sender);
			sp_log_int(&l, "nrcpt", (long long)q->nrcpt);
			sp_log_int(&l, "size", (long long)(q->len - q->body_off));
			sp_log_end(&l);
		}
		if (!m->scanned && early_add(m, q->id) < 0) {
			/* Cannot remember it: wait for the listing and drop
			 * it from there at once. */
			if (!m->scan_started)
				recover_scan(m);
			recover_scan_finish(m, q->id);
		}
		dispatch(m, q);
		break;
	case Q_CORRUPT:
		sp_log_msg(SP_LOG_WARN, "corrupt", "file=%s moved to corrupt/: %s", name, why);
		break;
	case Q_GONE:
		break;		/* claimed through another event, or removed */
	default:
		/* Left in new/: the periodic scan tries again. */
		sp_log_msg(SP_LOG_ERROR, "pickup", "file=%s: %s (will retry)", name, why);
		break;
	}
}

/* has_8bit - any byte >= 0x80 (BODY=8BITMIME needed).  Done here, once
 * per attempt, right after the file was read, while it is still in this
 * core's cache; 8 bytes per step. */
static int
has_8bit(const char *p, size_t n)
{
	uint64_t acc = 0, v;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		memcpy(&v, p + i, 8);
		acc |= v;
	}
	for (; i < n; i++)
		acc |= (uint8_t)p[i];
	return (acc & 0x8080808080808080ULL) != 0;
}

/* dispatch - cut the due recipients of q into jobs and hand them out */
static void
dispatch(qmgr_t *m, q_msg_t *q)
{
	int64_t now = now_s();
	eng_msg_t *em = calloc(1, sizeof(*em));
	unsigned char *taken = calloc(q->nrcpt ? q->nrcpt : 1, 1);
	size_t per = m->cfg->rcpts_per_transaction;
	int eightbit;

	if (em == NULL || taken == NULL) {
		/* Memory is short: retry this message in a minute. */
		sp_log_msg(SP_LOG_ERROR, "dispatch", "id=%s: out of memory", q->id);
		heap_push(m, now + 60, q->id);
		free(em);
		free(taken);
		q_msg_free(q);
		return;
	}
	em->q = q;
	m->inflight++;
	eightbit = has_8bit(q->data + q->body_off, q->len - q->body_off);
	for (size_t i = 0; i < q->nrcpt; i++) {
		const q_rcpt_t *r = &q->rcpt[i];
		eng_job_t *job;

		if (taken[i] || r->status == Q_RCPT_SENT || r->status == Q_RCPT_BOUNCED ||
		    r->next_attempt > now)
			continue;
		job = calloc(1, sizeof(*job));
		if (job == NULL || (job->rcpt = calloc(per, sizeof(*job->rcpt))) == NULL ||
		    (job->out = calloc(per, sizeof(*job->out))) == NULL) {
			if (job) {
				free(job->rcpt);
				free(job);
			}
			break;		/* the rest stays due: picked up next attempt */
		}
		job->owner = em;
		job->msg = q;
		job->body_8bit = eightbit;
		snprintf(job->domain, sizeof(job->domain), "%s", r->domain);
		/* Same domain, one transaction: O(n^2) over at most Q_MAX_RCPTS. */
		for (size_t k = i; k < q->nrcpt && job->nrcpt < per; k++) {
			const q_rcpt_t *rk = &q->rcpt[k];

			if (taken[k] || rk->status == Q_RCPT_SENT || rk->status == Q_RCPT_BOUNCED ||
			    rk->next_attempt > now || strcmp(rk->domain, r->domain) != 0)
				continue;
			taken[k] = 1;
			job->rcpt[job->nrcpt++] = k;
		}
		if (dest_suspended(m, job, now)) {
			free(job->rcpt);
			free(job->out);
			free(job);
			continue;
		}
		em->jobs_out++;
		eng_worker_submit(m->workers[m->next_worker], job);
		m->next_worker = (m->next_worker + 1) % m->nworkers;
	}
	free(taken);
	if (em->jobs_out == 0)
		attempt_over(m, em);
}

/* on_done - outcomes of finished jobs */
static void
on_done(qmgr_t *m)
{
	eng_job_t *job, *next;
	int64_t now = now_s();

	for (job = eng_jobq_take_all(&m->sh.done); job; job = next) {
		eng_msg_t *em = job->owner;
		q_msg_t *q = em->q;

		next = job->next;
		int any_sent = 0;
		for (size_t j = 0; job->attempted && j < job->nrcpt; j++) {
			const eng_outcome_t *o = &job->out[j];
			q_rcpt_t *r = &q->rcpt[job->rcpt[j]];
			enum q_rcpt_status st = o->status;
			char text[ENG_TEXT_MAX + 64];
			int64_t next_at = 0;

			if (st == Q_RCPT_PENDING)
				continue;
			snprintf(text, sizeof(text), "%s", o->text);
			/* q_rcpt_update counts this attempt in r->attempts. */
			if (st == Q_RCPT_DEFERRED) {
				if (now - q->arrival >= (int64_t)m->cfg->queue_lifetime) {
					st = Q_RCPT_BOUNCED;
					snprintf(text, sizeof(text), "%s (gave up after %u attempts: "
					    "queue lifetime expired)", o->text, r->attempts + 1);
				} else {
					next_at = now + q_retry_delay(m->cfg, r->attempts + 1,
					    (uint32_t)random());
				}
			}
			q_rcpt_update(r, st, o->dsn, text, job->relay[0] ? job->relay : NULL,
			    next_at);
			em->changed = 1;
			log_outcome(m, q, job, j, r);
			eng_metrics_rcpt(st);
			any_sent |= st == Q_RCPT_SENT;
			if (st == Q_RCPT_SENT)
				m->delivered++;
			else if (st == Q_RCPT_DEFERRED)
				m->deferred++;
			else
				m->bounced++;
		}
		if (any_sent) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			eng_metrics_delivery(job->tls_version, job->tls_verified,
			    (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - (double)q->arrival);
		}
		if (job->attempted)
			dest_result(m, job, now);
		free(job->rcpt);
		free(job->out);
		free(job);
		if (--em->jobs_out == 0)
			attempt_over(m, em);
	}
}

/* log_outcome - the one line per recipient attempt */
static void
log_outcome(qmgr_t *m, const q_msg_t *q, const eng_job_t *job, size_t j, const q_rcpt_t *r)
{
	static const char *names[] = { "pending", "deferred", "sent", "bounced" };
	sp_logline_t l;
	struct timespec ts;

	(void)m;
	(void)j;
	if (!sp_log_begin(&l, r->status == Q_RCPT_SENT ? SP_LOG_INFO : SP_LOG_WARN, "delivery"))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	sp_log_str(&l, "id", q->id);
	sp_log_str(&l, "from", q->sender);
	sp_log_str(&l, "rcpt", r->addr);
	sp_log_str(&l, "status", names[r->status]);
	sp_log_str(&l, "relay", job->relay[0] ? job->relay : "none");
	sp_log_str(&l, "dsn", r->dsn);
	sp_log_str(&l, "reply", r->last_error);
	sp_log_fmt(&l, "delay", "%.3f",
	    (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 - (double)q->arrival);
	sp_log_int(&l, "attempts", r->attempts);
	if (job->tls_version[0]) {
		sp_log_str(&l, "tls", job->tls_version);
		sp_log_str(&l, "cipher", job->tls_cipher);
		sp_log_str(&l, "verified", job->tls_verified);
		sp_log_str(&l, "resumed", job->tls_resumed ? "yes" : "no");
	} else {
		sp_log_str(&l, "tls", "none");
	}
	if (r->status == Q_RCPT_DEFERRED)
		sp_log_int(&l, "next_attempt", (long long)r->next_attempt);
	sp_log_end(&l);
}

/* attempt_over - every job of this attempt is back: record, finish or wait */
static void
attempt_over(qmgr_t *m, eng_msg_t *em)
{
	q_msg_t *q = em->q;
	char why[512];
	int rc;

	m->inflight--;
	if ((rc = dsn_send(m, q, now_s())) < 0) {
		/* The DSN could not be queued: the failure stays unreported and
		 * the message stays, and both are tried again in a minute. */
		if (record_or_hold(m, q, now_s() + 60))
			q = NULL;	/* held in memory until the spool takes it */
	} else if (q_msg_final(q)) {
		if (q->sender[0] == '\0') {
			for (size_t i = 0; i < q->nrcpt; i++)
				if (q->rcpt[i].status == Q_RCPT_BOUNCED)
					sp_log_msg(SP_LOG_WARN, "bounce_dropped",
					    "id=%s rcpt=%s: undeliverable message with null "
					    "sender <> is dropped, never bounced",
					    q->id, q->rcpt[i].addr);
		}
		if (q_done(m->sp, q, why, sizeof(why)) != Q_OK) {
			/* Keep its final state so that a restart removes it
			 * instead of sending it again. */
			sp_log_msg(SP_LOG_ERROR, "spool", "id=%s: cannot remove: %s", q->id, why);
			if (record_or_hold(m, q, now_s() + 60))
				q = NULL;
		} else {
			sp_logline_t l;
			int bounced_any = 0;

			for (size_t i = 0; i < q->nrcpt; i++)
				bounced_any |= q->rcpt[i].status == Q_RCPT_BOUNCED;
			eng_metrics_message_done(bounced_any);

			if (sp_log_begin(&l, SP_LOG_INFO, "removed")) {
				sp_log_str(&l, "id", q->id);
				sp_log_end(&l);
			}
		}
	} else {
		int64_t due = q_msg_next_attempt(q);

		if (em->changed || rc > 0) {
			if (record_or_hold(m, q, due))
				q = NULL;
		} else {
			heap_push(m, due, q->id);
		}
	}
	q_msg_free(q);
	free(em);
}

/*
 * Outcomes the spool would not take (disk full, I/O or permission errors)
 * are held in memory, never dropped: reloading the message from disk would
 * forget which recipients already have their copy and send it again.
 * While any are held, no new attempt starts (pump), so the set stays small;
 * every second the writes are tried again, and a message whose state is
 * written goes back to the deferred heap.
 */

/* record_or_hold - write q's state, then schedule it at `due`; 1 if q was
 * kept in memory instead (the caller must not free it) */
static int
record_or_hold(qmgr_t *m, q_msg_t *q, int64_t due)
{
	char why[512];

	if (q_record(m->sp, q, why, sizeof(why)) == Q_OK) {
		heap_push(m, due, q->id);
		return 0;
	}
	sp_log_msg(SP_LOG_ERROR, "spool", "id=%s: cannot record state: %s (held in memory, "
	    "new deliveries paused until the spool accepts writes)", q->id, why);
	if (m->nheld == m->held_cap) {
		size_t cap = m->held_cap ? 2 * m->held_cap : 64;
		struct held *h = realloc(m->held, cap * sizeof(*h));

		if (h == NULL) {
			/* Nowhere to keep it: the old state on disk stands, and at
			 * worst some recipients get a second copy.  Never a loss. */
			heap_push(m, due, q->id);
			return 0;
		}
		m->held = h;
		m->held_cap = cap;
	}
	m->held[m->nheld].q = q;
	m->held[m->nheld].due = due;
	m->nheld++;
	return 1;
}

/* retry_held - try the held state writes again (once a second) */
static void
retry_held(qmgr_t *m, int64_t now)
{
	size_t i = 0;
	char why[512];

	if (m->nheld == 0 || now < m->held_retry)
		return;
	m->held_retry = now + 1;
	while (i < m->nheld) {
		struct held *h = &m->held[i];

		if (q_record(m->sp, h->q, why, sizeof(why)) != Q_OK) {
			i++;
			continue;
		}
		sp_log_msg(SP_LOG_INFO, "spool", "id=%s: state recorded", h->q->id);
		heap_push(m, h->due, h->q->id);
		q_msg_free(h->q);
		m->held[i] = m->held[--m->nheld];
	}
}

/* Deferred heap: min-heap on due. */

static void
heap_push(qmgr_t *m, int64_t due, const char *id)
{
	size_t i;

	if (m->nheap == m->heap_cap) {
		size_t cap = m->heap_cap ? 2 * m->heap_cap : 1024;
		due_ent_t *h = realloc(m->heap, cap * sizeof(*h));

		if (h == NULL) {
			/* Found again by the next start's scan of msg/. */
			sp_log_msg(SP_LOG_ERROR, "schedule", "id=%s: out of memory", id);
			return;
		}
		m->heap = h;
		m->heap_cap = cap;
	}
	i = m->nheap++;
	m->heap[i].due = due;
	snprintf(m->heap[i].id, sizeof(m->heap[i].id), "%s", id);
	{
		int64_t t = id_time(m->heap[i].id);

		if (t > 0 && (m->oldest == 0 || t < m->oldest))
			m->oldest = t;
	}
	while (i > 0 && m->heap[(i - 1) / 2].due > m->heap[i].due) {
		due_ent_t t = m->heap[i];

		m->heap[i] = m->heap[(i - 1) / 2];
		m->heap[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static void
heap_pop(qmgr_t *m)
{
	size_t i = 0;

	if (id_time(m->heap[0].id) == m->oldest)
		m->oldest_stale = 1;
	m->heap[0] = m->heap[--m->nheap];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, s = i;

		if (l < m->nheap && m->heap[l].due < m->heap[s].due)
			s = l;
		if (r < m->nheap && m->heap[r].due < m->heap[s].due)
			s = r;
		if (s == i)
			break;
		due_ent_t t = m->heap[i];

		m->heap[i] = m->heap[s];
		m->heap[s] = t;
		i = s;
	}
}

/*
 * Destination suspension.  After SUSPEND_AFTER consecutive jobs whose every
 * host failed at connection or TLS level, the domain is suspended: its jobs
 * are not handed to workers but wait, without counting an attempt, until
 * the suspension ends (SUSPEND_MIN seconds, doubling while it keeps
 * failing, at most retry_min).  The first job after that is the probe; a
 * job that reaches an SMTP transaction lifts the suspension.
 */

/* dest_fail_get - the failure record of a domain (created on demand) */
static dest_fail_t *
dest_fail_get(qmgr_t *m, const char *domain, int create)
{
	uint32_t h = 2166136261u;
	dest_fail_t *f;

	for (const char *p = domain; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h %= SUSPEND_TAB;
	for (f = m->fail_tab[h]; f; f = f->next)
		if (strcmp(f->domain, domain) == 0)
			return f;
	if (!create || (f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	snprintf(f->domain, sizeof(f->domain), "%s", domain);
	f->next = m->fail_tab[h];
	m->fail_tab[h] = f;
	return f;
}

/* dest_result - count a job's connection-level outcome for its domain */
static void
dest_result(qmgr_t *m, const eng_job_t *job, int64_t now)
{
	dest_fail_t *f;

	if (!job->conn_failed) {
		/* The destination answered SMTP inside TLS: it works. */
		if ((f = dest_fail_get(m, job->domain, 0)) != NULL) {
			if (f->until)
				sp_log_msg(SP_LOG_INFO, "resumed", "domain=%s: delivery resumed",
				    job->domain);
			f->failures = 0;
			f->suspensions = 0;
			f->until = 0;
		}
		return;
	}
	if ((f = dest_fail_get(m, job->domain, 1)) == NULL)
		return;
	snprintf(f->why, sizeof(f->why), "%s", job->nrcpt ? job->out[0].text : "");
	if (++f->failures >= SUSPEND_AFTER && f->until <= now) {
		unsigned secs = SUSPEND_MIN << (f->suspensions < 8 ? f->suspensions : 8);

		if (secs > m->cfg->retry_min)
			secs = m->cfg->retry_min;
		f->suspensions++;
		f->until = now + secs;
		sp_log_msg(SP_LOG_WARN, "suspended", "domain=%s for=%us after %u failures: %s",
		    job->domain, secs, f->failures, f->why);
	}
}

/* dest_suspended - 1 if job's domain is suspended: its recipients wait */
static int
dest_suspended(qmgr_t *m, eng_job_t *job, int64_t now)
{
	dest_fail_t *f = dest_fail_get(m, job->domain, 0);
	q_msg_t *q = job->msg == NULL ? NULL : (q_msg_t *)job->owner->q;
	sp_logline_t l;

	if (f == NULL || f->until <= now || q == NULL)
		return 0;
	for (size_t j = 0; j < job->nrcpt; j++) {
		q_rcpt_t *r = &q->rcpt[job->rcpt[j]];

		/* Not an attempt: attempts and the retry schedule stay as they are. */
		r->next_attempt = f->until + (int64_t)(random() % 5);
		if (r->status == Q_RCPT_PENDING)
			r->status = Q_RCPT_DEFERRED;
		if (sp_log_begin(&l, SP_LOG_INFO, "delivery")) {
			sp_log_str(&l, "id", q->id);
			sp_log_str(&l, "rcpt", r->addr);
			sp_log_str(&l, "status", "deferred");
			sp_log_str(&l, "relay", "none");
			sp_log_str(&l, "dsn", "4.4.1");
			sp_log_fmt(&l, "reply", "delivery temporarily suspended: %s", f->why);
			sp_log_int(&l, "attempts", r->attempts);
			sp_log_int(&l, "next_attempt", (long long)r->next_attempt);
			sp_log_end(&l);
		}
	}
	return 1;
}

/*
 * Delivery status notifications.  After every attempt, one DSN per kind
 * (failed, delayed, delivered) covers every recipient of the message that
 * needs one and has not been reported: a 550 is reported at once, a 451 when
 * its lifetime ends (it is BOUNCED then), success only when NOTIFY asked.
 * Order, for at-least-once without loss: the DSN is written into the spool
 * (q_spool_put: fsync'd) first, then `reported` is set and recorded, and only
 * then may the original be removed.  A crash in between re-sends a DSN; it
 * never loses one.
 */

/* dsn_needed - does r need a report it has not had? (action out) */
static int
dsn_needed(const q_msg_t *q, const q_rcpt_t *r, enum q_dsn_action *action)
{
	enum q_dsn_action a;

	if (r->reported)
		return 0;
	if (r->status == Q_RCPT_BOUNCED)
		a = Q_DSN_FAILED;
	else if (r->status == Q_RCPT_SENT)
		a = Q_DSN_DELIVERED;
	else
		return 0;
	if (action)
		*action = a;
	return q_dsn_wanted(q, r, a);
}

/* dsn_put - build and queue one DSN for the listed recipients; 0 or -1 */
static int
dsn_put(qmgr_t *m, q_msg_t *q, const size_t *idx, size_t n, enum q_dsn_action action,
	int64_t now)
{
	static const char *names[] = { "failed", "delayed", "delivered" };
	char err[256], id[Q_ID_LEN];
	char *text = NULL;
	size_t len = 0;

	if (q_dsn_build_until(q, idx, n, action, m->cfg->helo_name, now,
	    q->arrival + (int64_t)m->cfg->queue_lifetime, DSN_MAX_FULL, &text, &len,
	    err, sizeof(err)) != Q_OK ||
	    q_spool_put(m->sp, text, len, id, err, sizeof(err)) != Q_OK) {
		free(text);
		sp_log_msg(SP_LOG_ERROR, "dsn", "id=%s action=%s: cannot queue the DSN: %s",
		    q->id, names[action], err);
		return -1;
	}
	free(text);
	for (size_t i = 0; i < n; i++) {
		sp_logline_t l;

		if (action != Q_DSN_DELAYED)
			q->rcpt[idx[i]].reported = 1;
		if (sp_log_begin(&l, SP_LOG_INFO, "dsn")) {
			sp_log_str(&l, "id", q->id);
			sp_log_str(&l, "dsn_id", id);
			sp_log_str(&l, "action", names[action]);
			sp_log_str(&l, "rcpt", q->rcpt[idx[i]].addr);
			sp_log_str(&l, "to", q->sender);
			sp_log_end(&l);
		}
	}
	return 0;
}

/* dsn_send - queue the DSNs this message needs now; -1 failed, else how
 * many were queued (the state then changed) */
static int
dsn_send(qmgr_t *m, q_msg_t *q, int64_t now)
{
	size_t *idx = calloc(q->nrcpt ? q->nrcpt : 1, sizeof(*idx));
	int queued = 0;

	if (idx == NULL)
		return -1;
	for (int a = Q_DSN_FAILED; a <= Q_DSN_DELIVERED; a++) {
		size_t n = 0;

		for (size_t i = 0; i < q->nrcpt; i++) {
			const q_rcpt_t *r = &q->rcpt[i];
			enum q_dsn_action want;

			if (a == Q_DSN_DELAYED) {
				/* One warning per message, once it waited that long. */
				if (m->cfg->delay_warning == 0 || q->warned ||
				    r->status != Q_RCPT_DEFERRED ||
				    now - q->arrival < (int64_t)m->cfg->delay_warning ||
				    !q_dsn_wanted(q, r, Q_DSN_DELAYED))
					continue;
			} else if (!dsn_needed(q, r, &want) || (int)want != a) {
				continue;
			}
			idx[n++] = i;
		}
		if (n == 0)
			continue;
		if (dsn_put(m, q, idx, n, (enum q_dsn_action)a, now) < 0) {
			free(idx);
			return -1;
		}
		if (a == Q_DSN_DELAYED)
			q->warned = 1;
		queued++;
	}
	free(idx);
	return queued;
}
