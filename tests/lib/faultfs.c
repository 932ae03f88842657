/*
 * tests/lib/faultfs.c - an LD_PRELOAD shim that makes file system calls on
 * one folder fail, for the disk-full and I/O-error tests.
 *
 *	FAULTFS_DIR=/abs/spool	calls on files under this folder can fail
 *	FAULTFS_CTL=/abs/file	... while this file exists (checked per call,
 *				so a test switches faults on and off with
 *				touch / rm)
 *	FAULTFS_MODE=wsor	which calls fail [w]:
 *				  w  write, pwrite, writev  -> ENOSPC
 *				  s  fsync, fdatasync       -> EIO
 *				  d  the same, on folders only (the
 *				     fsync after a rename)
 *				  o  open/openat O_CREAT    -> ENOSPC
 *				  r  rename, renameat(2)    -> EIO
 *
 * Built by the test itself: cc -shared -fPIC -o faultfs.so faultfs.c -ldl.
 * A descriptor's path comes from /proc/self/fd, so sockets, pipes and files
 * elsewhere (the engine's log) are never touched.  Errors are reported the
 * libc way: -1 and errno.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static int faultfs_on(int what);
static int faultfs_under(const char *path);
static int faultfs_fd(int fd);
static int faultfs_at(int dirfd, const char *path);
static int faultfs_sync_fails(int fd);
static void faultfs_next(const char *name, void *slot);

ssize_t write(int fd, const void *buf, size_t n);
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off);
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off);
ssize_t writev(int fd, const struct iovec *iov, int cnt);
int fsync(int fd);
int fdatasync(int fd);
int open(const char *path, int flags, ...);
int open64(const char *path, int flags, ...);
int openat(int dirfd, const char *path, int flags, ...);
int openat64(int dirfd, const char *path, int flags, ...);
int rename(const char *from, const char *to);
int renameat(int fd1, const char *from, int fd2, const char *to);
int renameat2(int fd1, const char *from, int fd2, const char *to, unsigned flags);

/* faultfs_next - store the real libc function in *slot (a function
 * pointer; copied as bytes, since ISO C has no object-to-function cast) */
static void
faultfs_next(const char *name, void *slot)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (p == NULL)
		abort();
	memcpy(slot, &p, sizeof(p));
}

/* faultfs_on - faults of this kind are wanted right now */
static int
faultfs_on(int what)
{
	const char *ctl = getenv("FAULTFS_CTL"), *mode = getenv("FAULTFS_MODE");
	int saved = errno, on;

	if (ctl == NULL || getenv("FAULTFS_DIR") == NULL)
		return 0;
	if (strchr(mode != NULL && mode[0] != '\0' ? mode : "w", what) == NULL)
		return 0;
	on = access(ctl, F_OK) == 0;
	errno = saved;
	return on;
}

/* faultfs_under - path is FAULTFS_DIR or inside it */
static int
faultfs_under(const char *path)
{
	const char *dir = getenv("FAULTFS_DIR");
	size_t n;

	if (dir == NULL || path == NULL)
		return 0;
	n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* faultfs_fd - fd is a file under FAULTFS_DIR */
static int
faultfs_fd(int fd)
{
	char link[64], path[PATH_MAX];
	ssize_t n;
	int saved = errno;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	errno = saved;
	if (n <= 0)
		return 0;
	path[n] = '\0';
	return faultfs_under(path);
}

/* faultfs_at - dirfd + path names something under FAULTFS_DIR */
static int
faultfs_at(int dirfd, const char *path)
{
	char link[64], dir[PATH_MAX], full[2 * PATH_MAX + 2];
	ssize_t n;
	int saved = errno;

	if (path == NULL)
		return 0;
	if (path[0] == '/')
		return faultfs_under(path);
	if (dirfd == AT_FDCWD) {
		if (getcwd(dir, sizeof(dir)) == NULL) {
			errno = saved;
			return 0;
		}
	} else {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
		if ((n = readlink(link, dir, sizeof(dir) - 1)) <= 0) {
			errno = saved;
			return 0;
		}
		dir[n] = '\0';
	}
	errno = saved;
	snprintf(full, sizeof(full), "%s/%s", dir, path);
	return faultfs_under(full);
}

/* faultfs_sync_fails - an fsync of fd is to fail now */
static int
faultfs_sync_fails(int fd)
{
	struct stat sb;
	int saved = errno, dir;

	if (!faultfs_on('s') && !faultfs_on('d'))
		return 0;
	if (!faultfs_fd(fd))
		return 0;
	if (faultfs_on('s'))
		return 1;
	dir = fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode);
	errno = saved;
	return dir;
}

ssize_t
write(int fd, const void *buf, size_t n)
{
	static ssize_t (*next)(int, const void *, size_t);

	if (faultfs_on('w') && faultfs_fd(fd)) {
		errno = ENOSPC;
		return -1;
	}
	if (next == NULL)
		faultfs_next("write", &next);
	return next(fd, buf, n);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	static ssize_t (*next)(int, const void *, size_t, off_t);

	if (faultfs_on('w') && faultfs_fd(fd)) {
		errno = ENOSPC;
		return -1;
	}
	if (next == NULL)
		faultfs_next("pwrite", &next);
	return next(fd, buf, n, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off_t off)
{
	return pwrite(fd, buf, n, off);
}

ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
	static ssize_t (*next)(int, const struct iovec *, int);

	if (faultfs_on('w') && faultfs_fd(fd)) {
		errno = ENOSPC;
		return -1;
	}
	if (next == NULL)
		faultfs_next("writev", &next);
	return next(fd, iov, cnt);
}

int
fsync(int fd)
{
	static int (*next)(int);

	if (faultfs_sync_fails(fd)) {
		errno = EIO;
		return -1;
	}
	if (next == NULL)
		faultfs_next("fsync", &next);
	return next(fd);
}

int
fdatasync(int fd)
{
	static int (*next)(int);

	if (faultfs_sync_fails(fd)) {
		errno = EIO;
		return -1;
	}
	if (next == NULL)
		faultfs_next("fdatasync", &next);
	return next(fd);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	static int (*next)(int, const char *, int, ...);
	mode_t mode = 0;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;

		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
		if (faultfs_on('o') && faultfs_at(dirfd, path)) {
			errno = ENOSPC;
			return -1;
		}
	}
	if (next == NULL)
		faultfs_next("openat", &next);
	return next(dirfd, path, flags, mode);
}

int
openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;

		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	return openat(dirfd, path, flags, mode);
}

int
open(const char *path, int flags, ...)
{
	mode_t mode = 0;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;

		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	return openat(AT_FDCWD, path, flags, mode);
}

int
open64(const char *path, int flags, ...)
{
	mode_t mode = 0;

	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;

		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	return openat(AT_FDCWD, path, flags, mode);
}

int
renameat2(int fd1, const char *from, int fd2, const char *to, unsigned flags)
{
	static int (*next)(int, const char *, int, const char *, unsigned);

	if (faultfs_on('r') && (faultfs_at(fd1, from) || faultfs_at(fd2, to))) {
		errno = EIO;
		return -1;
	}
	if (next == NULL)
		faultfs_next("renameat2", &next);
	return next(fd1, from, fd2, to, flags);
}

int
renameat(int fd1, const char *from, int fd2, const char *to)
{
	static int (*next)(int, const char *, int, const char *);

	if (faultfs_on('r') && (faultfs_at(fd1, from) || faultfs_at(fd2, to))) {
		errno = EIO;
		return -1;
	}
	if (next == NULL)
		faultfs_next("renameat", &next);
	return next(fd1, from, fd2, to);
}

int
rename(const char *from, const char *to)
{
	return renameat(AT_FDCWD, from, AT_FDCWD, to);
}
