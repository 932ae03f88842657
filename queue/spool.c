/*
 * queue/spool.c - the spool on disk: folders, pickup, per-message state.
 *
 *	q_spool_open(), q_spool_close(), q_spool_dir()
 *	q_scan_new(), q_claim()			new/ -> msg/ID (or corrupt/)
 *	q_scan_queue(), q_load(), q_load_state() msg/ + state/ back into memory
 *	q_record(), q_done()			state/ID replaced atomically; removal
 *	q_submit(), q_spool_put(), q_flush()	writers' side
 *	q_id_make(), q_id_valid(), q_load_new(), q_flush_count() (q_int.h)
 *
 * Ownership: a q_spool_t holds one directory fd per folder and is shared by
 * every thread (all calls are *at() on those fds; nothing mutable but the
 * id counter, which is atomic).  q_claim()/q_load() hand back a heap
 * q_msg_t owning its data; q_load_state() one without data.  The caller
 * frees with q_msg_free().
 *
 * Errors: Q_OK, or Q_ERROR (I/O: nothing changed, try again), Q_CORRUPT
 * (bad input; for q_claim the file is in corrupt/), Q_GONE (vanished), with
 * a reason in why.  Nothing logs.  The fsync discipline and the crash
 * analysis of each step are in queue/README.md.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue/q_int.h"

enum { D_TMP, D_NEW, D_MSG, D_STATE, D_CORRUPT, D_N };

static const char *const dir_names[D_N] = { "tmp", "new", "msg", "state", "corrupt" };

struct q_spool {
	int	rootfd;
	int	fd[D_N];
	char	root[PATH_MAX];
	char	path[D_N][PATH_MAX + 16];
};

#define STATE_MAGIC	"sealpost-state 1"
#define STATE_MAX	(8 * 1024 * 1024)	/* 1000 recipients with long texts */
#define READ_CHUNK	16384

static atomic_uint id_counter;

static int err_set(char *why, size_t whylen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int read_fd(int fd, size_t max, size_t hint, int envelope, char **out, size_t *outlen);
static int write_all(int fd, const char *buf, size_t n);
static int write_atomic(int dirfd, const char *tmp, const char *name, const char *buf,
			size_t n, int sync);
static int name_ok(const char *name);
static int load_common(q_spool_t *sp, int dir, const char *name, int full,
		       q_msg_t **out, char *why, size_t whylen);
static int state_read(q_spool_t *sp, const char *id, q_msg_t *st, struct stat *sb,
		      char *why, size_t whylen);
static int state_parse(const char *buf, size_t len, q_msg_t *st, char *why, size_t whylen);
static int state_apply(q_msg_t *msg, q_msg_t *st, char *why, size_t whylen);
static char *state_format(const q_msg_t *msg, size_t *outlen);
static int buf_add(char **b, size_t *len, size_t *cap, const char *s, size_t n);
static int buf_esc(char **b, size_t *len, size_t *cap, const char *s);
static char *unescape(const char *s, size_t n);
static int64_t now_s(void);
static void list_dir(int dirfd, void (*cb)(void *arg, const char *name), void *arg);
static uint64_t name_hash(const char *s);
static int hash_cmp(const void *a, const void *b);
static int corrupt_move(q_spool_t *sp, const char *name, const char *reason,
			char *why, size_t whylen);
static int spool_write(q_spool_t *sp, const char *a, size_t alen, const char *b, size_t blen,
		       char id_out[Q_ID_LEN], char *err, size_t errlen);

/* err_set - format a reason into why and return rc */
static int
err_set(char *why, size_t whylen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* now_s - wall clock, unix seconds */
static int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

/* q_id_make - 13 hex digits of microseconds since the epoch (sortable until
 * 2112), 6 of the pid (pid_max is at most 2^22), 4 of a per-process atomic
 * counter: unique across threads and concurrent processes */
void
q_id_make(char id[Q_ID_LEN])
{
	struct timespec ts;
	unsigned long long us;
	unsigned c = atomic_fetch_add(&id_counter, 1u);

	clock_gettime(CLOCK_REALTIME, &ts);
	us = (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000u;
	snprintf(id, Q_ID_LEN, "%013llx%06x%04x", us & 0xfffffffffffffull,
		 (unsigned)getpid() & 0xffffffu, c & 0xffffu);
}

/* q_id_valid - exactly Q_ID_LEN-1 lower-case hex digits */
int
q_id_valid(const char *s)
{
	size_t i;

	for (i = 0; i < Q_ID_LEN - 1; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[i] == '\0';
}

/* name_ok - a plain file name: not empty, no '/', no leading dot */
static int
name_ok(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n <= NAME_MAX && name[0] != '.' && strchr(name, '/') == NULL;
}

/* q_spool_open - create the folders (0750, root 0750) and open them */
int
q_spool_open(q_spool_t **out, const char *root, char *err, size_t errlen)
{
	q_spool_t *sp;
	int i;

	*out = NULL;
	if (mkdir(root, 0750) == -1 && errno != EEXIST)
		return err_set(err, errlen, Q_ERROR, "spool %s: mkdir: %s", root, strerror(errno));
	if ((sp = calloc(1, sizeof(*sp))) == NULL)
		return err_set(err, errlen, Q_ERROR, "spool %s: out of memory", root);
	sp->rootfd = -1;
	for (i = 0; i < D_N; i++)
		sp->fd[i] = -1;
	if (realpath(root, sp->root) == NULL) {
		err_set(err, errlen, Q_ERROR, "spool %s: %s", root, strerror(errno));
		goto bad;
	}
	if ((sp->rootfd = open(sp->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		err_set(err, errlen, Q_ERROR, "spool %s: %s", sp->root, strerror(errno));
		goto bad;
	}
	for (i = 0; i < D_N; i++) {
		/* tmp/ and corrupt/ may hold anyone's data: owner only */
		mode_t mode = (i == D_TMP || i == D_CORRUPT) ? 0700 : 0750;

		snprintf(sp->path[i], sizeof(sp->path[i]), "%s/%s", sp->root, dir_names[i]);
		if (mkdirat(sp->rootfd, dir_names[i], mode) == -1 && errno != EEXIST) {
			err_set(err, errlen, Q_ERROR, "spool %s: mkdir: %s", sp->path[i],
				strerror(errno));
			goto bad;
		}
		sp->fd[i] = openat(sp->rootfd, dir_names[i],
				   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sp->fd[i] == -1) {
			err_set(err, errlen, Q_ERROR, "spool %s: %s", sp->path[i], strerror(errno));
			goto bad;
		}
	}
	*out = sp;
	return Q_OK;
bad:
	q_spool_close(sp);
	return Q_ERROR;
}

/* q_spool_close - close the folders and free; NULL is fine */
void
q_spool_close(q_spool_t *sp)
{
	int i;

	if (sp == NULL)
		return;
	for (i = 0; i < D_N; i++)
		if (sp->fd[i] != -1)
			close(sp->fd[i]);
	if (sp->rootfd != -1)
		close(sp->rootfd);
	free(sp);
}

/* q_spool_dir - absolute path of a subfolder, or of the root for "" / NULL */
const char *
q_spool_dir(const q_spool_t *sp, const char *sub)
{
	int i;

	if (sub == NULL || *sub == '\0')
		return sp->root;
	for (i = 0; i < D_N; i++)
		if (strcmp(sub, dir_names[i]) == 0)
			return sp->path[i];
	return NULL;
}

/* list_dir - cb for every entry not starting with '.' */
static void
list_dir(int dirfd, void (*cb)(void *arg, const char *name), void *arg)
{
	struct dirent *de;
	DIR *d;
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd == -1)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			cb(arg, de->d_name);
	closedir(d);
}

/* q_scan_new - cb for every file name in new/ */
int
q_scan_new(q_spool_t *sp, void (*cb)(void *arg, const char *name), void *arg)
{
	list_dir(sp->fd[D_NEW], cb, arg);
	return Q_OK;
}

struct scan_ctx {
	void (*cb)(void *, const char *);
	void *arg;
	q_spool_t *sp;
	uint64_t *seen;		/* name hashes of msg/, NULL when out of memory */
	size_t	nseen, seen_cap;
};

/* name_hash - FNV-1a 64 of a file name */
static uint64_t
name_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ULL;
	return h;
}

/* hash_cmp - order of uint64_t (qsort/bsearch) */
static int
hash_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* scan_msg_cb - pass queue ids through, remembering their hashes */
static void
scan_msg_cb(void *arg, const char *name)
{
	struct scan_ctx *c = arg;

	if (!q_id_valid(name))
		return;
	if (c->nseen == c->seen_cap) {
		size_t cap = c->seen_cap ? 2 * c->seen_cap : 4096;
		uint64_t *n = realloc(c->seen, cap * sizeof(*n));

		if (n == NULL) {
			free(c->seen);
			c->seen = NULL;
			c->seen_cap = SIZE_MAX;	/* no more tries: faccessat for all */
		} else {
			c->seen = n;
			c->seen_cap = cap;
		}
	}
	if (c->seen != NULL)
		c->seen[c->nseen++] = name_hash(name);
	c->cb(c->arg, name);
}

/* q_scan_queue - cb for every id in msg/, then drop state files whose
 * message is gone (a crash between the two unlinks of q_done) and stale
 * temporary files.  The orphan test is made per file at unlink time, so a
 * message claimed during the scan keeps its state.  A state file whose
 * name was just listed in msg/ is not an orphan and needs no look-up: the
 * hashes of the msg/ names (8 bytes each, freed on return) spare one
 * faccessat per queued message, which took 0.8 s of a 1.8 s scan of
 * 1,000,000 messages (dcache hash chains); only state files not listed
 * (or sharing a hash) are checked on disk, as before. */
int
q_scan_queue(q_spool_t *sp, void (*cb)(void *arg, const char *id), void *arg)
{
	struct scan_ctx c = { cb, arg, sp, NULL, 0, 0 };
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int fd;

	list_dir(sp->fd[D_MSG], scan_msg_cb, &c);
	if (c.seen != NULL)
		qsort(c.seen, c.nseen, sizeof(*c.seen), hash_cmp);

	if ((fd = openat(sp->fd[D_STATE], ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		free(c.seen);
		return Q_OK;
	}
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		free(c.seen);
		return Q_OK;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.') {
			/* a writer's temporary older than a minute is a crash leftover */
			size_t n = strlen(de->d_name);

			if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0 &&
			    fstatat(sp->fd[D_STATE], de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
			    sb.st_mtime < time(NULL) - 60)
				unlinkat(sp->fd[D_STATE], de->d_name, 0);
			continue;
		}
		if (c.seen != NULL) {
			uint64_t h = name_hash(de->d_name);

			if (bsearch(&h, c.seen, c.nseen, sizeof(h), hash_cmp) != NULL)
				continue;	/* listed in msg/ (or a collision: kept) */
		}
		if (faccessat(sp->fd[D_MSG], de->d_name, F_OK, AT_SYMLINK_NOFOLLOW) == -1 &&
		    errno == ENOENT)
			unlinkat(sp->fd[D_STATE], de->d_name, 0);
	}
	closedir(d);
	free(c.seen);
	return Q_OK;
}

/* read_fd - read fd into a NUL-terminated buffer (caller frees): to its
 * end, -2 when that is larger than max; or, with envelope set, only until
 * the empty line that ends the envelope or max bytes, whichever is first
 * (`queue` on 10,000 fax messages then reads kilobytes each, not their
 * attachments).  -1 with errno set on a read error. */
static int
read_fd(int fd, size_t max, size_t hint, int envelope, char **out, size_t *outlen)
{
	size_t cap = hint + 1 > max + 1 ? max + 1 : hint + 1, len = 0;
	char *buf, *nb;
	ssize_t r;

	if (cap < 64)
		cap = 64;
	/* One byte more than cap, always: the NUL after the data fits even
	 * when a read ends the envelope exactly at the end of the buffer. */
	if ((buf = malloc(cap + 1)) == NULL)
		return -1;
	for (;;) {
		if (len == cap) {
			if (cap > max) {
				if (envelope)
					break;
				free(buf);
				return -2;
			}
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			if ((nb = realloc(buf, cap + 1)) == NULL) {
				free(buf);
				errno = ENOMEM;
				return -1;
			}
			buf = nb;
		}
		r = read(fd, buf + len, cap - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			int e = errno;

			free(buf);
			errno = e;
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (envelope && ((len > 0 && buf[0] == '\n') || memmem(buf, len, "\n\n", 2) != NULL ||
		    memmem(buf, len, "\n\r\n", 3) != NULL))
			break;
	}
	if (len > max) {
		if (!envelope) {
			free(buf);
			return -2;
		}
		len = max;
	}
	buf[len] = '\0';	/* len <= cap: callers may rely on it */
	*out = buf;
	*outlen = len;
	return 0;
}

/* write_all - write n bytes, retrying short writes */
static int
write_all(int fd, const char *buf, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, buf, n);
		if (w == -1 && errno == EINTR)
			continue;
		if (w == -1)
			return -1;
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

/* write_atomic - dir/tmp written (and fsynced when sync), renamed to name,
 * dir fsynced when sync; -1 with errno, the temporary removed */
static int
write_atomic(int dirfd, const char *tmp, const char *name, const char *buf, size_t n, int sync)
{
	int fd, e;

	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd == -1)
		return -1;
	if (write_all(fd, buf, n) == -1 || (sync && fsync(fd) == -1)) {
		e = errno;
		close(fd);
		unlinkat(dirfd, tmp, 0);
		errno = e;
		return -1;
	}
	if (close(fd) == -1 || renameat(dirfd, tmp, dirfd, name) == -1) {
		e = errno;
		unlinkat(dirfd, tmp, 0);
		errno = e;
		return -1;
	}
	if (sync && fsync(dirfd) == -1)
		return -1;
	return 0;
}

/* corrupt_move - corrupt/NAME.why then new/NAME -> corrupt/NAME; Q_CORRUPT,
 * Q_GONE when the file vanished, Q_ERROR when it could not be moved */
static int
corrupt_move(q_spool_t *sp, const char *name, const char *reason, char *why, size_t whylen)
{
	char target[NAME_MAX + 1], whyname[NAME_MAX + 16], tmp[NAME_MAX + 32], text[1024];
	char stamp[32];
	time_t t = time(NULL);
	struct tm tm;
	int n;

	/* keep the name unless it is taken or too long for ".why" */
	if (strlen(name) + 4 > NAME_MAX ||
	    faccessat(sp->fd[D_CORRUPT], name, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		q_id_make(target);
	else
		snprintf(target, sizeof(target), "%s", name);
	snprintf(whyname, sizeof(whyname), "%s.why", target);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", whyname);
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	n = snprintf(text, sizeof(text), "reason: %s\ntime: %lld (%s)\nfile: new/%s\n",
		     reason, (long long)t, stamp, name);
	if (n < 0 || (size_t)n >= sizeof(text))
		n = (int)strlen(text);
	if (write_atomic(sp->fd[D_CORRUPT], tmp, whyname, text, (size_t)n, 0) == -1)
		return err_set(why, whylen, Q_ERROR, "new/%s: corrupt (%s) but corrupt/%s: %s",
			       name, reason, whyname, strerror(errno));
	if (renameat(sp->fd[D_NEW], name, sp->fd[D_CORRUPT], target) == -1) {
		int e = errno;

		unlinkat(sp->fd[D_CORRUPT], whyname, 0);
		if (e == ENOENT)
			return err_set(why, whylen, Q_GONE, "new/%s: vanished", name);
		return err_set(why, whylen, Q_ERROR, "new/%s: corrupt (%s) but cannot move "
			       "it to corrupt/: %s", name, reason, strerror(e));
	}
	return err_set(why, whylen, Q_CORRUPT, "new/%s moved to corrupt/%s: %s", name,
		       target, reason);
}

/* q_claim - new/NAME -> msg/ID.  The id is NAME when NAME is an id (what
 * q_submit printed), else a fresh one.  A rename that never replaces keeps a
 * hostile NAME from overwriting a queued message. */
int
q_claim(q_spool_t *sp, const char *name, q_msg_t **out, char *why, size_t whylen)
{
	char reason[512], id[Q_ID_LEN];
	struct timespec ts[2];
	struct stat sb;
	q_msg_t *msg;
	size_t len = 0;
	char *data = NULL;
	int fd, rc, tries;

	*out = NULL;
	if (!name_ok(name))
		return err_set(why, whylen, Q_GONE, "new/%.*s: not a spool file name", 64, name);
	fd = openat(sp->fd[D_NEW], name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1) {
		if (errno == ENOENT)
			return err_set(why, whylen, Q_GONE, "new/%s: vanished", name);
		if (errno == ELOOP)
			return corrupt_move(sp, name, "a symbolic link, not a regular file",
					    why, whylen);
		return err_set(why, whylen, Q_ERROR, "new/%s: open: %s", name, strerror(errno));
	}
	if (fstat(fd, &sb) == -1) {
		rc = err_set(why, whylen, Q_ERROR, "new/%s: fstat: %s", name, strerror(errno));
		close(fd);
		return rc;
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		return corrupt_move(sp, name, "not a regular file", why, whylen);
	}
	if (sb.st_size > Q_MAX_FILE) {
		close(fd);
		snprintf(reason, sizeof(reason), "file larger than %d bytes", Q_MAX_FILE);
		return corrupt_move(sp, name, reason, why, whylen);
	}
	rc = read_fd(fd, Q_MAX_FILE, (size_t)sb.st_size, 0, &data, &len);
	if (rc == -1) {
		rc = err_set(why, whylen, Q_ERROR, "new/%s: read: %s", name, strerror(errno));
		close(fd);
		return rc;
	}
	if (rc == -2) {
		close(fd);
		snprintf(reason, sizeof(reason), "file larger than %d bytes", Q_MAX_FILE);
		return corrupt_move(sp, name, reason, why, whylen);
	}
	if ((msg = malloc(sizeof(*msg))) == NULL) {
		free(data);
		close(fd);
		return err_set(why, whylen, Q_ERROR, "new/%s: out of memory", name);
	}
	if (q_parse(data, len, msg, reason, sizeof(reason)) != Q_OK) {
		free(msg);
		free(data);
		close(fd);
		return corrupt_move(sp, name, reason, why, whylen);
	}
	/* mtime = arrival, so a restart without a state file sees the same */
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[1] = ts[0];
	futimens(fd, ts);
	close(fd);

	if (q_id_valid(name))
		snprintf(id, sizeof(id), "%s", name);
	else
		q_id_make(id);
	for (tries = 0;; tries++) {
		if (renameat2(sp->fd[D_NEW], name, sp->fd[D_MSG], id, RENAME_NOREPLACE) == 0)
			break;
		if (errno == EINVAL &&	/* file system without RENAME_NOREPLACE */
		    faccessat(sp->fd[D_MSG], id, F_OK, AT_SYMLINK_NOFOLLOW) == -1 &&
		    renameat(sp->fd[D_NEW], name, sp->fd[D_MSG], id) == 0)
			break;
		if (errno == EEXIST && tries < 3) {
			q_id_make(id);
			continue;
		}
		rc = errno == ENOENT ? Q_GONE : Q_ERROR;
		err_set(why, whylen, rc, "new/%s: rename to msg/%s: %s", name, id,
			strerror(errno));
		q_msg_free(msg);
		free(data);
		return rc;
	}
	memcpy(msg->id, id, Q_ID_LEN);
	msg->data = data;
	msg->len = len;
	msg->arrival = (int64_t)ts[0].tv_sec;
	*out = msg;
	return err_set(why, whylen, Q_OK, "new/%s claimed as %s", name, id);
}

/* load_common - read dir/NAME: the whole file (full) or its envelope */
static int
load_common(q_spool_t *sp, int dir, const char *name, int full, q_msg_t **out,
	    char *why, size_t whylen)
{
	const char *dn = dir_names[dir];
	struct stat sb;
	q_msg_t *msg;
	size_t len = 0;
	char *data = NULL;
	int fd, rc;

	*out = NULL;
	if (dir == D_MSG ? !q_id_valid(name) : !name_ok(name))
		return err_set(why, whylen, Q_GONE, "%s/%.*s: not a queue file name", dn, 64, name);
	fd = openat(sp->fd[dir], name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1)
		return err_set(why, whylen, errno == ENOENT ? Q_GONE : Q_ERROR, "%s/%s: open: %s",
			       dn, name, strerror(errno));
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return err_set(why, whylen, Q_CORRUPT, "%s/%s: not a regular file", dn, name);
	}
	rc = full ? read_fd(fd, Q_MAX_FILE, (size_t)sb.st_size, 0, &data, &len)
		  : read_fd(fd, Q_MAX_ENVELOPE + Q_MAX_LINE + 4, READ_CHUNK, 1, &data, &len);
	close(fd);
	if (rc == -1)
		return err_set(why, whylen, Q_ERROR, "%s/%s: read: %s", dn, name, strerror(errno));
	if (rc == -2)
		return err_set(why, whylen, Q_CORRUPT, "%s/%s: larger than %d bytes", dn, name,
			       Q_MAX_FILE);
	if ((msg = malloc(sizeof(*msg))) == NULL) {
		free(data);
		return err_set(why, whylen, Q_ERROR, "%s/%s: out of memory", dn, name);
	}
	rc = full ? q_parse(data, len, msg, why, whylen)
		  : q_parse_envelope(data, len, msg, why, whylen);
	if (rc != Q_OK) {
		char r[256];

		snprintf(r, sizeof(r), "%s", why != NULL ? why : "");
		free(msg);
		free(data);
		return err_set(why, whylen, Q_CORRUPT, "%s/%s: %s", dn, name, r);
	}
	if (full) {
		msg->data = data;
		msg->len = len;
	} else {
		free(data);
	}
	snprintf(msg->id, sizeof(msg->id), "%s", strlen(name) < Q_ID_LEN ? name : "");
	msg->arrival = (int64_t)sb.st_mtime;
	if (dir == D_MSG) {
		q_msg_t st;

		rc = state_read(sp, name, &st, NULL, why, whylen);
		if (rc == Q_GONE)
			rc = Q_OK;	/* no state yet: every recipient pending */
		else if (rc == Q_OK)
			rc = state_apply(msg, &st, why, whylen);
		if (rc != Q_OK) {
			q_msg_free(msg);
			return rc;
		}
	}
	*out = msg;
	return Q_OK;
}

/* q_load - msg/ID and state/ID into a message owning its data */
int
q_load(q_spool_t *sp, const char *id, q_msg_t **out, char *why, size_t whylen)
{
	return load_common(sp, D_MSG, id, 1, out, why, whylen);
}

/* q_load_state - the envelope part of msg/ID and state/ID, no data: the
 * state file keeps only per-recipient outcomes, the addresses come from the
 * first kilobytes of the message file */
int
q_load_state(q_spool_t *sp, const char *id, q_msg_t **out, char *why, size_t whylen)
{
	return load_common(sp, D_MSG, id, 0, out, why, whylen);
}

/* q_load_new - the envelope of an unclaimed new/NAME (for `queue`) */
int
q_load_new(q_spool_t *sp, const char *name, q_msg_t **out, char *why, size_t whylen)
{
	return load_common(sp, D_NEW, name, 0, out, why, whylen);
}

/* buf_add - append n bytes to a growing buffer */
static int
buf_add(char **b, size_t *len, size_t *cap, const char *s, size_t n)
{
	char *nb;

	if (*len + n + 1 > *cap) {
		size_t nc = (*cap ? *cap : 256);

		while (nc < *len + n + 1)
			nc *= 2;
		if ((nb = realloc(*b, nc)) == NULL)
			return -1;
		*b = nb;
		*cap = nc;
	}
	memcpy(*b + *len, s, n);
	*len += n;
	(*b)[*len] = '\0';
	return 0;
}

/* buf_esc - " -" for NULL, " =" and the text with bytes outside 0x21..0x7e
 * and '%' as %XX: one token, no blanks, any byte survives */
static int
buf_esc(char **b, size_t *len, size_t *cap, const char *s)
{
	char e[4];

	if (s == NULL)
		return buf_add(b, len, cap, " -", 2);
	if (buf_add(b, len, cap, " =", 2) == -1)
		return -1;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c >= 0x7f || c == '%') {
			snprintf(e, sizeof(e), "%%%02X", c);
			if (buf_add(b, len, cap, e, 3) == -1)
				return -1;
		} else if (buf_add(b, len, cap, s, 1) == -1) {
			return -1;
		}
	}
	return 0;
}

/* unescape - reverse of buf_esc for one token ("=..." or "-"); NULL for
 * "-", also NULL (with errno EINVAL) for a malformed token */
static char *
unescape(const char *s, size_t n)
{
	char *out, *o;
	size_t i;

	errno = 0;
	if (n == 1 && s[0] == '-')
		return NULL;
	if (n == 0 || s[0] != '=') {
		errno = EINVAL;
		return NULL;
	}
	if ((out = o = malloc(n)) == NULL)
		return NULL;
	for (i = 1; i < n; i++) {
		if (s[i] == '%') {
			unsigned v;
			char hx[3];

			if (i + 2 >= n) {
				free(out);
				errno = EINVAL;
				return NULL;
			}
			hx[0] = s[i + 1];
			hx[1] = s[i + 2];
			hx[2] = '\0';
			if (sscanf(hx, "%2x", &v) != 1 || v == 0) {
				free(out);
				errno = EINVAL;
				return NULL;
			}
			*o++ = (char)v;
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* state_format - the text of state/ID (format in queue/README.md) */
static char *
state_format(const q_msg_t *msg, size_t *outlen)
{
	char *b = NULL, line[128];
	size_t len = 0, cap = 0, i;
	int n;

	n = snprintf(line, sizeof(line), STATE_MAGIC "\narrival %lld\nwarned %d\nnrcpt %zu\n",
		     (long long)msg->arrival, msg->warned ? 1 : 0, msg->nrcpt);
	if (buf_add(&b, &len, &cap, line, (size_t)n) == -1)
		goto bad;
	for (i = 0; i < msg->nrcpt; i++) {
		const q_rcpt_t *r = &msg->rcpt[i];

		n = snprintf(line, sizeof(line), "rcpt %zu %s %u %lld %d", i,
			     q_rcpt_status_name(r->status), r->attempts,
			     (long long)r->next_attempt, r->reported ? 1 : 0);
		if (buf_add(&b, &len, &cap, line, (size_t)n) == -1 ||
		    buf_esc(&b, &len, &cap, r->dsn[0] ? r->dsn : NULL) == -1 ||
		    buf_esc(&b, &len, &cap, r->relay) == -1 ||
		    buf_esc(&b, &len, &cap, r->last_error) == -1 ||
		    buf_esc(&b, &len, &cap, r->addr) == -1 ||
		    buf_add(&b, &len, &cap, "\n", 1) == -1)
			goto bad;
	}
	if (buf_add(&b, &len, &cap, "end\n", 4) == -1)
		goto bad;
	*outlen = len;
	return b;
bad:
	free(b);
	return NULL;
}

/* state_parse - parse state text into st (rcpt[] with addr and state) */
static int
state_parse(const char *buf, size_t len, q_msg_t *st, char *why, size_t whylen)
{
	const char *p = buf, *end = buf + len, *nl;
	unsigned lineno = 0;
	size_t nrcpt = 0, next = 0;
	int have_end = 0;

	memset(st, 0, sizeof(*st));
	while (p < end) {
		char line[64];
		const char *f[10];
		size_t fl[10], n, k;
		int nf = 0;
		const char *q;

		lineno++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			goto trunc;
		n = (size_t)(nl - p);
		/* split on single spaces: tokens never contain blanks */
		for (q = p; q < nl && nf < 10;) {
			const char *s = q;

			while (q < nl && *q != ' ')
				q++;
			f[nf] = s;
			fl[nf++] = (size_t)(q - s);
			if (q < nl)
				q++;
		}
		if (q < nl)
			goto bad;	/* more fields than any line has */
		if (have_end)
			goto bad;
		if (lineno == 1) {
			if (n != strlen(STATE_MAGIC) || memcmp(p, STATE_MAGIC, n) != 0)
				return err_set(why, whylen, Q_CORRUPT, "state line 1: not a "
					       "sealpost state file (version 1)");
		} else if (nf == 1 && fl[0] == 3 && memcmp(f[0], "end", 3) == 0) {
			have_end = 1;
		} else if (nf == 2 && fl[1] < sizeof(line)) {
			long long v;
			char *e;

			memcpy(line, f[1], fl[1]);
			line[fl[1]] = '\0';
			v = strtoll(line, &e, 10);
			if (*e != '\0' || e == line)
				goto bad;
			if (fl[0] == 7 && memcmp(f[0], "arrival", 7) == 0) {
				st->arrival = v;
			} else if (fl[0] == 6 && memcmp(f[0], "warned", 6) == 0) {
				st->warned = v != 0;
			} else if (fl[0] == 5 && memcmp(f[0], "nrcpt", 5) == 0) {
				if (v < 0 || v > Q_MAX_RCPTS || st->rcpt != NULL)
					goto bad;
				nrcpt = (size_t)v;
				if (nrcpt > 0 && (st->rcpt = calloc(nrcpt, sizeof(q_rcpt_t))) == NULL)
					return err_set(why, whylen, Q_ERROR, "out of memory");
			} else {
				goto bad;
			}
		} else if (nf == 10 && fl[0] == 4 && memcmp(f[0], "rcpt", 4) == 0) {
			q_rcpt_t *r;
			long long v[4];
			char *e, *dsn;
			int i;

			if (next >= nrcpt)
				goto bad;
			for (i = 0; i < 4; i++) {
				k = i == 0 ? 1 : (size_t)(i + 2);
				if (fl[k] == 0 || fl[k] >= sizeof(line))
					goto bad;
				memcpy(line, f[k], fl[k]);
				line[fl[k]] = '\0';
				v[i] = strtoll(line, &e, 10);
				if (*e != '\0')
					goto bad;
			}
			if (v[0] != (long long)next || v[1] < 0 || v[1] > UINT32_MAX)
				goto bad;
			r = &st->rcpt[next];
			st->nrcpt = ++next;	/* owned strings are freed from here on */
			if (fl[2] == 7 && memcmp(f[2], "pending", 7) == 0)
				r->status = Q_RCPT_PENDING;
			else if (fl[2] == 8 && memcmp(f[2], "deferred", 8) == 0)
				r->status = Q_RCPT_DEFERRED;
			else if (fl[2] == 4 && memcmp(f[2], "sent", 4) == 0)
				r->status = Q_RCPT_SENT;
			else if (fl[2] == 7 && memcmp(f[2], "bounced", 7) == 0)
				r->status = Q_RCPT_BOUNCED;
			else
				goto bad;
			r->attempts = (unsigned)v[1];
			r->next_attempt = v[2];
			r->reported = v[3] != 0;
			dsn = unescape(f[6], fl[6]);
			if (dsn == NULL && errno != 0)
				goto bad;
			if (dsn != NULL)
				snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
			free(dsn);
			r->relay = unescape(f[7], fl[7]);
			if (r->relay == NULL && errno != 0)
				goto bad;
			r->last_error = unescape(f[8], fl[8]);
			if (r->last_error == NULL && errno != 0)
				goto bad;
			r->addr = unescape(f[9], fl[9]);
			if (r->addr == NULL)
				goto bad;
		} else {
			goto bad;
		}
		p = nl + 1;
	}
	if (!have_end || next != nrcpt)
		goto trunc;
	return Q_OK;
trunc:
	q_msg_clear(st);
	return err_set(why, whylen, Q_CORRUPT, "state file truncated at line %u", lineno);
bad:
	q_msg_clear(st);
	return err_set(why, whylen, Q_CORRUPT, "state line %u: malformed", lineno);
}

/* state_read - read and parse state/ID; Q_GONE when there is none */
static int
state_read(q_spool_t *sp, const char *id, q_msg_t *st, struct stat *sbout,
	   char *why, size_t whylen)
{
	struct stat sb;
	size_t len = 0;
	char *buf = NULL, r[256];
	int fd, rc;

	memset(st, 0, sizeof(*st));
	fd = openat(sp->fd[D_STATE], id, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1)
		return err_set(why, whylen, errno == ENOENT ? Q_GONE : Q_ERROR,
			       "state/%s: open: %s", id, strerror(errno));
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return err_set(why, whylen, Q_CORRUPT, "state/%s: not a regular file", id);
	}
	if (sbout != NULL)
		*sbout = sb;
	rc = read_fd(fd, STATE_MAX, (size_t)sb.st_size, 0, &buf, &len);
	close(fd);
	if (rc == -1)
		return err_set(why, whylen, Q_ERROR, "state/%s: read: %s", id, strerror(errno));
	if (rc == -2)
		return err_set(why, whylen, Q_CORRUPT, "state/%s: too large", id);
	rc = state_parse(buf, len, st, r, sizeof(r));
	free(buf);
	if (rc != Q_OK)
		return err_set(why, whylen, rc, "state/%s: %s", id, r);
	return Q_OK;
}

/* state_apply - move per-recipient state from st into msg; st is freed.
 * The addresses must match index by index: a state file from another
 * message is refused rather than misapplied. */
static int
state_apply(q_msg_t *msg, q_msg_t *st, char *why, size_t whylen)
{
	size_t i;

	if (st->nrcpt != msg->nrcpt) {
		err_set(why, whylen, Q_CORRUPT, "state/%s: %zu recipients, message has %zu",
			msg->id, st->nrcpt, msg->nrcpt);
		q_msg_clear(st);
		return Q_CORRUPT;
	}
	for (i = 0; i < msg->nrcpt; i++) {
		if (strcmp(st->rcpt[i].addr, msg->rcpt[i].addr) != 0) {
			err_set(why, whylen, Q_CORRUPT, "state/%s: recipient %zu is %s, message "
				"has %s", msg->id, i, st->rcpt[i].addr, msg->rcpt[i].addr);
			q_msg_clear(st);
			return Q_CORRUPT;
		}
	}
	msg->arrival = st->arrival;
	msg->warned = st->warned;
	for (i = 0; i < msg->nrcpt; i++) {
		q_rcpt_t *d = &msg->rcpt[i], *s = &st->rcpt[i];

		d->status = s->status;
		d->attempts = s->attempts;
		d->next_attempt = s->next_attempt;
		d->reported = s->reported;
		memcpy(d->dsn, s->dsn, sizeof(d->dsn));
		free(d->last_error);
		free(d->relay);
		d->last_error = s->last_error;
		d->relay = s->relay;
		s->last_error = s->relay = NULL;
	}
	q_msg_clear(st);
	return Q_OK;
}

/* q_record - write state/ID atomically: state/.ID.tmp, fsync, rename, fsync
 * state/.  The first record of a message also fsyncs msg/ first, so that a
 * durable state file always has its (durable) message: q_claim's rename is
 * not synced on its own. */
int
q_record(q_spool_t *sp, const q_msg_t *msg, char *why, size_t whylen)
{
	char tmp[Q_ID_LEN + 8];
	size_t len;
	char *text;

	if (!q_id_valid(msg->id))
		return err_set(why, whylen, Q_ERROR, "record: bad queue id");
	if (faccessat(sp->fd[D_STATE], msg->id, F_OK, AT_SYMLINK_NOFOLLOW) == -1 &&
	    errno == ENOENT && fsync(sp->fd[D_MSG]) == -1)
		return err_set(why, whylen, Q_ERROR, "%s: fsync msg/: %s", msg->id,
			       strerror(errno));
	if ((text = state_format(msg, &len)) == NULL)
		return err_set(why, whylen, Q_ERROR, "%s: out of memory", msg->id);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", msg->id);
	if (write_atomic(sp->fd[D_STATE], tmp, msg->id, text, len, 1) == -1) {
		int e = errno;

		free(text);
		return err_set(why, whylen, Q_ERROR, "state/%s: write: %s", msg->id, strerror(e));
	}
	free(text);
	return Q_OK;
}

/* q_done - unlink msg/ID, then state/ID (a crash between leaves an orphan
 * state that q_scan_queue removes, never a message without its record) */
int
q_done(q_spool_t *sp, const q_msg_t *msg, char *why, size_t whylen)
{
	if (!q_id_valid(msg->id))
		return err_set(why, whylen, Q_ERROR, "done: bad queue id");
	if (unlinkat(sp->fd[D_MSG], msg->id, 0) == -1 && errno != ENOENT)
		return err_set(why, whylen, Q_ERROR, "msg/%s: unlink: %s", msg->id,
			       strerror(errno));
	if (unlinkat(sp->fd[D_STATE], msg->id, 0) == -1 && errno != ENOENT)
		return err_set(why, whylen, Q_ERROR, "state/%s: unlink: %s", msg->id,
			       strerror(errno));
	return Q_OK;
}

/* q_submit - tmp/ID (fsync) -> new/ID, fsync new/.  Q_CORRUPT for a bad
 * address or size (nothing written), Q_ERROR for I/O with errno kept. */
int
q_submit(q_spool_t *sp, const char *sender, const char *const *rcpts, size_t nrcpt,
	 const char *message, size_t len, char id_out[Q_ID_LEN], char *err, size_t errlen)
{
	char *env = NULL, r[160];
	size_t elen = 0, ecap = 0, i;
	int rc, e;

	if (sender == NULL || strcmp(sender, "<>") == 0)
		sender = "";
	if (*sender != '\0' && q_addr_check(sender, strlen(sender), r, sizeof(r)) != 0)
		return err_set(err, errlen, Q_CORRUPT, "sender %s: %s", sender, r);
	if (nrcpt == 0)
		return err_set(err, errlen, Q_CORRUPT, "no recipients");
	if (nrcpt > Q_MAX_RCPTS)
		return err_set(err, errlen, Q_CORRUPT, "too many recipients (more than %d)",
			       Q_MAX_RCPTS);
	for (i = 0; i < nrcpt; i++)
		if (q_addr_check(rcpts[i], strlen(rcpts[i]), r, sizeof(r)) != 0)
			return err_set(err, errlen, Q_CORRUPT, "recipient %.*s: %s", 300,
				       rcpts[i], r);
	if (len == 0)
		return err_set(err, errlen, Q_CORRUPT, "empty message");

	if (buf_add(&env, &elen, &ecap, "MAIL FROM:<", 11) == -1 ||
	    buf_add(&env, &elen, &ecap, sender, strlen(sender)) == -1 ||
	    buf_add(&env, &elen, &ecap, ">\n", 2) == -1)
		goto nomem;
	for (i = 0; i < nrcpt; i++)
		if (buf_add(&env, &elen, &ecap, "RCPT TO:<", 9) == -1 ||
		    buf_add(&env, &elen, &ecap, rcpts[i], strlen(rcpts[i])) == -1 ||
		    buf_add(&env, &elen, &ecap, ">\n", 2) == -1)
			goto nomem;
	if (buf_add(&env, &elen, &ecap, "\n", 1) == -1)
		goto nomem;
	if (elen > Q_MAX_ENVELOPE || elen + len > Q_MAX_FILE) {
		free(env);
		return err_set(err, errlen, Q_CORRUPT, "message too large (limit %d bytes)",
			       Q_MAX_FILE);
	}

	rc = spool_write(sp, env, elen, message, len, id_out, err, errlen);
	e = errno;
	free(env);
	errno = e;
	return rc;
nomem:
	free(env);
	errno = ENOMEM;
	return err_set(err, errlen, Q_ERROR, "out of memory");
}

/* q_spool_put - a complete spool file (checked with q_parse, so the engine
 * can claim it) written like q_submit's */
int
q_spool_put(q_spool_t *sp, const char *text, size_t len, char id_out[Q_ID_LEN],
	    char *err, size_t errlen)
{
	q_msg_t m;
	char why[256];

	if (text == NULL || len == 0)
		return err_set(err, errlen, Q_CORRUPT, "empty spool file");
	if (len > Q_MAX_FILE)
		return err_set(err, errlen, Q_CORRUPT, "spool file too large (limit %d bytes)",
			       Q_MAX_FILE);
	if (q_parse(text, len, &m, why, sizeof(why)) != Q_OK)
		return err_set(err, errlen, Q_CORRUPT, "not a spool file: %s", why);
	q_msg_clear(&m);
	return spool_write(sp, text, len, NULL, 0, id_out, err, errlen);
}

/* spool_write - a then b into tmp/ID (fsync) -> new/ID, fsync new/; the
 * id in id_out on Q_OK; Q_ERROR with errno kept, tmp/ID removed */
static int
spool_write(q_spool_t *sp, const char *a, size_t alen, const char *b, size_t blen,
	    char id_out[Q_ID_LEN], char *err, size_t errlen)
{
	char id[Q_ID_LEN];
	int fd, e;

	q_id_make(id);
	fd = openat(sp->fd[D_TMP], id, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		    0640);
	if (fd == -1) {
		e = errno;
		err_set(err, errlen, Q_ERROR, "tmp/%s: %s", id, strerror(e));
		errno = e;
		return Q_ERROR;
	}
	if (write_all(fd, a, alen) == -1 || (blen > 0 && write_all(fd, b, blen) == -1) ||
	    fsync(fd) == -1) {
		e = errno;
		close(fd);
		goto ioerr;
	}
	if (close(fd) == -1) {
		e = errno;
		goto ioerr;
	}
	if (renameat2(sp->fd[D_TMP], id, sp->fd[D_NEW], id, RENAME_NOREPLACE) == -1 &&
	    (errno != EINVAL || renameat(sp->fd[D_TMP], id, sp->fd[D_NEW], id) == -1)) {
		e = errno;
		goto ioerr;
	}
	if (fsync(sp->fd[D_NEW]) == -1) {
		/*
		 * The file is complete in new/, only its name's durability is
		 * in doubt.  Failing while leaving it there would make the
		 * caller submit again and the engine send both: take it back
		 * (renaming it out of new/ is atomic against the engine's
		 * claim) and fail.  Already claimed (ENOENT): it is queued.
		 */
		e = errno;
		if (renameat(sp->fd[D_NEW], id, sp->fd[D_TMP], id) == 0) {
			unlinkat(sp->fd[D_TMP], id, 0);
			err_set(err, errlen, Q_ERROR, "fsync %s: %s (message withdrawn)",
			    sp->path[D_NEW], strerror(e));
			errno = e;
			return Q_ERROR;
		}
		if (errno != ENOENT) {
			err_set(err, errlen, Q_ERROR, "fsync %s: %s; new/%s could not be "
			    "withdrawn: %s", sp->path[D_NEW], strerror(e), id, strerror(errno));
			errno = e;
			return Q_ERROR;
		}
	}
	memcpy(id_out, id, Q_ID_LEN);
	return Q_OK;
ioerr:
	unlinkat(sp->fd[D_TMP], id, 0);
	err_set(err, errlen, Q_ERROR, "writing %s/%s: %s", sp->path[D_TMP], id, strerror(e));
	errno = e;
	return Q_ERROR;
}

struct flush_ctx {
	q_spool_t *sp;
	unsigned made_due;
	int failed;
	char *err;
	size_t errlen;
};

/* flush_one - state/ID: deferred recipients due now, rewritten only when the
 * file was not replaced meanwhile (a running engine's record wins) */
static void
flush_one(void *arg, const char *id)
{
	struct flush_ctx *c = arg;
	struct stat before, after;
	char tmp[NAME_MAX + 16];	/* ids come from directory names here */
	q_msg_t st;
	size_t i, len;
	int changed = 0;
	char *text;

	if (!q_id_valid(id) || state_read(c->sp, id, &st, &before, NULL, 0) != Q_OK)
		return;
	for (i = 0; i < st.nrcpt; i++) {
		if (st.rcpt[i].status == Q_RCPT_DEFERRED && st.rcpt[i].next_attempt != 0) {
			st.rcpt[i].next_attempt = 0;
			changed = 1;
		}
	}
	if (!changed) {
		q_msg_clear(&st);
		return;
	}
	text = state_format(&st, &len);
	q_msg_clear(&st);
	if (text == NULL) {
		c->failed = 1;
		return;
	}
	snprintf(tmp, sizeof(tmp), ".%s.flush.tmp", id);
	if (fstatat(c->sp->fd[D_STATE], id, &after, AT_SYMLINK_NOFOLLOW) == 0 &&
	    after.st_ino == before.st_ino && after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
	    after.st_mtim.tv_nsec == before.st_mtim.tv_nsec) {
		if (write_atomic(c->sp->fd[D_STATE], tmp, id, text, len, 1) == -1) {
			err_set(c->err, c->errlen, Q_ERROR, "state/%s: %s", id, strerror(errno));
			c->failed = 1;
		} else {
			c->made_due++;
		}
	}
	free(text);
}

/* q_flush_count - every deferred recipient due now, then root/flush */
int
q_flush_count(q_spool_t *sp, unsigned *made_due, char *err, size_t errlen)
{
	struct flush_ctx c = { sp, 0, 0, err, errlen };
	char text[32];
	int n;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	list_dir(sp->fd[D_STATE], flush_one, &c);
	if (made_due != NULL)
		*made_due = c.made_due;
	n = snprintf(text, sizeof(text), "%lld\n", (long long)now_s());
	if (write_atomic(sp->rootfd, "." Q_FLUSH_FILE ".tmp", Q_FLUSH_FILE, text, (size_t)n,
			 0) == -1)
		return err_set(err, errlen, Q_ERROR, "%s/%s: %s", sp->root, Q_FLUSH_FILE,
			       strerror(errno));
	return c.failed ? Q_ERROR : Q_OK;
}

/* q_flush - make every deferred message due now and poke a running engine */
int
q_flush(q_spool_t *sp, char *err, size_t errlen)
{
	return q_flush_count(sp, NULL, err, errlen);
}
