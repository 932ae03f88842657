/*
 * bench/fill.c - `sealpost-bench fill`: write fax-like messages into a spool.
 *
 *	bench_fill_main(argc, argv)
 *
 * Each message is a spool file (DESIGN.md "The spool": envelope block,
 * empty line, RFC 5322 message) holding a short text part and a base64
 * "PDF" attachment of --size raw bytes (pseudo-random, so nothing on the
 * way can compress it), a unique Message-ID <fill-RUNID-I@sealpost.bench>
 * and an X-Sealpost-Bench-Submitted: header (unix time in microseconds at
 * the moment of writing) from which the delivery latency is measured.
 *
 * Files are written into SPOOL/tmp/ and renamed into SPOOL/new/, so the
 * engine never sees half a file.  fsync only with --fsync: by default the
 * filler is as fast as the page cache, which is what a benchmark wants
 * (a crash of the machine during a fill loses test data only).
 *
 * Errors: a message on stderr and a sysexits.h code.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

#define FILL_MAX_SIZE	(48u * 1024 * 1024)	/* raw attachment bytes */
#define FILL_MAX_RCPTS	1000
#define FILL_MAX_DOMAIN	200

typedef struct fill_buf {
	char	*p;
	size_t	len, cap;
} fill_buf_t;

typedef struct fill_opts {
	const char *spool;
	uint64_t n;
	uint64_t size_min, size_max;
	uint64_t ndomains;
	const char *domain_fmt;
	uint64_t rcpts;
	const char *sender;
	uint64_t rate;
	uint64_t seed;
	int	do_fsync;
	int	crlf;
	int	quiet;
} fill_opts_t;

static void fill_usage(void);
static int fill_mkdirs(const char *spool);
static void fill_put(fill_buf_t *b, const void *p, size_t n);
static void fill_puts(fill_buf_t *b, const char *s);
static void fill_printf(fill_buf_t *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void fill_eol(fill_buf_t *b, const fill_opts_t *o);
static int fill_domain(char *out, size_t outlen, const char *fmt, uint64_t i);
static uint64_t fill_rand(uint64_t *s);
static void fill_message(fill_buf_t *b, const fill_opts_t *o, const char *runid,
			 uint64_t i, size_t size, uint64_t *rnd);
static int fill_write(const fill_opts_t *o, const char *runid, uint64_t i,
		      const fill_buf_t *b);
static int fill_parse_dist(const char *s, uint64_t *lo, uint64_t *hi);

/* fill_usage - the options */
static void
fill_usage(void)
{
	fprintf(stderr,
	    "usage: sealpost-bench fill --spool DIR -n N --size BYTES [options]\n"
	    "  --spool DIR            spool root (tmp/ and new/ are created)\n"
	    "  -n, --count N          number of messages\n"
	    "  --size BYTES           raw size of the PDF attachment (base64 adds 1/3)\n"
	    "  --size-dist uniform:MIN:MAX  attachment size drawn per message\n"
	    "  --domains K            spread messages over K domains [1]\n"
	    "  --domain-fmt FMT       domain name, %%d = domain index [d%%d.test]\n"
	    "  --rcpts-per-msg R      recipients per message, same domain [1]\n"
	    "  --sender ADDR          envelope sender [fax-noreply@fax.sealpost.test]\n"
	    "  --rate MSGS_PER_S      pace the writes (absolute deadlines) [as fast as possible]\n"
	    "  --fsync                fsync each file and new/ (default off, for speed)\n"
	    "  --crlf                 CRLF line ends in the message (default LF)\n"
	    "  --seed S               seed of the content and size draws [1]\n"
	    "  --quiet                no summary line\n");
}

/* fill_mkdirs - create SPOOL, SPOOL/tmp and SPOOL/new when missing */
static int
fill_mkdirs(const char *spool)
{
	char path[4096];
	const char *sub[] = { "", "/tmp", "/new" };
	size_t i;

	for (i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s%s", spool, sub[i]) >= sizeof(path)) {
			fprintf(stderr, "fill: spool path too long\n");
			return -1;
		}
		if (mkdir(path, 0755) == -1 && errno != EEXIST) {
			fprintf(stderr, "fill: mkdir %s: %s\n", path, strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* fill_put - append bytes, growing the buffer (abort on no memory: a tool) */
static void
fill_put(fill_buf_t *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (b->p == NULL) {
			fprintf(stderr, "fill: out of memory\n");
			exit(EX_OSERR);
		}
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

/* fill_puts - append a C string */
static void
fill_puts(fill_buf_t *b, const char *s)
{
	fill_put(b, s, strlen(s));
}

/* fill_printf - append formatted text (short pieces only) */
static void
fill_printf(fill_buf_t *b, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	fill_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* fill_eol - end a message line the chosen way */
static void
fill_eol(fill_buf_t *b, const fill_opts_t *o)
{
	fill_put(b, o->crlf ? "\r\n" : "\n", o->crlf ? 2 : 1);
}

/* fill_domain - expand FMT with %d = i, without handing FMT to printf
 * (it comes from the command line) */
static int
fill_domain(char *out, size_t outlen, const char *fmt, uint64_t i)
{
	size_t o = 0;
	const char *p;
	char num[24];

	for (p = fmt; *p != '\0'; p++) {
		const char *piece = p;
		size_t plen = 1;

		if (p[0] == '%' && p[1] == 'd') {
			snprintf(num, sizeof(num), "%llu", (unsigned long long)i);
			piece = num;
			plen = strlen(num);
			p++;
		}
		if (o + plen >= outlen || o + plen > FILL_MAX_DOMAIN)
			return -1;
		memcpy(out + o, piece, plen);
		o += plen;
	}
	out[o] = '\0';
	return o > 0 ? 0 : -1;
}

/* fill_rand - xorshift64*: cheap and reproducible from --seed */
static uint64_t
fill_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* fill_message - build spool file i (envelope and message) in b */
static void
fill_message(fill_buf_t *b, const fill_opts_t *o, const char *runid,
	     uint64_t i, size_t size, uint64_t *rnd)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char domain[256], boundary[64], line[80];
	uint64_t r, d = o->ndomains > 0 ? i % o->ndomains : 0;
	unsigned char *pdf;
	size_t k, col;
	time_t now = time(NULL);
	struct tm tm;
	char date[64];

	if (fill_domain(domain, sizeof(domain), o->domain_fmt, d) == -1)
		snprintf(domain, sizeof(domain), "d%llu.test", (unsigned long long)d);
	b->len = 0;

	/* envelope: LF line ends, like every writer on Unix */
	fill_printf(b, "MAIL FROM:<%s>\n", o->sender);
	for (r = 0; r < o->rcpts; r++)
		fill_printf(b, "RCPT TO:<user%llu@%s>\n",
		    (unsigned long long)(i * o->rcpts + r), domain);
	fill_puts(b, "\n");

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	snprintf(boundary, sizeof(boundary), "=_fill_%s_%llu", runid, (unsigned long long)i);

	fill_printf(b, "From: Fax Service <%s>", o->sender); fill_eol(b, o);
	fill_printf(b, "To: user%llu@%s", (unsigned long long)(i * o->rcpts), domain);
	fill_eol(b, o);
	fill_printf(b, "Subject: Fax from +61 2 5550 %04llu (%zu pages)",
	    (unsigned long long)(i % 10000), size / 20000 + 1); fill_eol(b, o);
	fill_printf(b, "Date: %s", date); fill_eol(b, o);
	fill_printf(b, "Message-ID: <fill-%s-%llu@sealpost.bench>", runid,
	    (unsigned long long)i); fill_eol(b, o);
	fill_printf(b, "X-Sealpost-Bench-Submitted: %lld", (long long)bench_now_us());
	fill_eol(b, o);
	fill_puts(b, "MIME-Version: 1.0"); fill_eol(b, o);
	fill_printf(b, "Content-Type: multipart/mixed; boundary=\"%s\"", boundary);
	fill_eol(b, o);
	fill_eol(b, o);
	fill_printf(b, "--%s", boundary); fill_eol(b, o);
	fill_puts(b, "Content-Type: text/plain; charset=us-ascii"); fill_eol(b, o);
	fill_eol(b, o);
	fill_printf(b, "You have received a fax (%zu bytes). It is attached as a PDF.",
	    size); fill_eol(b, o);
	/* a line starting with a dot, so every run exercises dot-stuffing */
	fill_puts(b, ".sealpost bench: this line starts with a dot"); fill_eol(b, o);
	fill_eol(b, o);
	fill_printf(b, "--%s", boundary); fill_eol(b, o);
	fill_puts(b, "Content-Type: application/pdf; name=\"fax.pdf\""); fill_eol(b, o);
	fill_puts(b, "Content-Transfer-Encoding: base64"); fill_eol(b, o);
	fill_puts(b, "Content-Disposition: attachment; filename=\"fax.pdf\"");
	fill_eol(b, o);
	fill_eol(b, o);

	/* the attachment: a PDF-looking head, random bytes, %%EOF */
	pdf = malloc(size + 64);
	if (pdf == NULL) {
		fprintf(stderr, "fill: out of memory\n");
		exit(EX_OSERR);
	}
	k = (size_t)snprintf((char *)pdf, 64, "%%PDF-1.4\n%% fill %s %llu\n", runid,
	    (unsigned long long)i);
	for (; k + 8 <= size; k += 8) {
		uint64_t x = fill_rand(rnd);

		memcpy(pdf + k, &x, 8);
	}
	for (; k < size; k++)
		pdf[k] = (unsigned char)fill_rand(rnd);
	if (size >= 6 + 40)
		memcpy(pdf + size - 6, "%%EOF\n", 6);
	col = 0;
	for (k = 0; k < size; k += 3) {
		uint32_t v = (uint32_t)pdf[k] << 16;
		size_t left = size - k;

		if (left > 1)
			v |= (uint32_t)pdf[k + 1] << 8;
		if (left > 2)
			v |= pdf[k + 2];
		line[col++] = b64[(v >> 18) & 63];
		line[col++] = b64[(v >> 12) & 63];
		line[col++] = left > 1 ? b64[(v >> 6) & 63] : '=';
		line[col++] = left > 2 ? b64[v & 63] : '=';
		if (col == 76) {
			fill_put(b, line, col);
			fill_eol(b, o);
			col = 0;
		}
	}
	if (col > 0) {
		fill_put(b, line, col);
		fill_eol(b, o);
	}
	free(pdf);
	fill_eol(b, o);
	fill_printf(b, "--%s--", boundary); fill_eol(b, o);
}

/* fill_write - tmp/NAME, write all, optional fsync, rename into new/ */
static int
fill_write(const fill_opts_t *o, const char *runid, uint64_t i, const fill_buf_t *b)
{
	char tmp[4200], dst[4200];
	size_t off = 0;
	int fd;

	snprintf(tmp, sizeof(tmp), "%s/tmp/fill-%s-%llu", o->spool, runid,
	    (unsigned long long)i);
	snprintf(dst, sizeof(dst), "%s/new/fill-%s-%llu", o->spool, runid,
	    (unsigned long long)i);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd == -1) {
		fprintf(stderr, "fill: open %s: %s\n", tmp, strerror(errno));
		return -1;
	}
	while (off < b->len) {
		ssize_t n = write(fd, b->p + off, b->len - off);

		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "fill: write %s: %s\n", tmp,
			    n == 0 ? "short write" : strerror(errno));
			close(fd);
			unlink(tmp);
			return -1;
		}
		off += (size_t)n;
	}
	if (o->do_fsync && fsync(fd) == -1) {
		fprintf(stderr, "fill: fsync %s: %s\n", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (close(fd) == -1 || rename(tmp, dst) == -1) {
		fprintf(stderr, "fill: rename %s: %s\n", tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* fill_parse_dist - "uniform:MIN:MAX" */
static int
fill_parse_dist(const char *s, uint64_t *lo, uint64_t *hi)
{
	char buf[128], *a, *c;

	if (strncmp(s, "uniform:", 8) != 0 || strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s + 8);
	a = buf;
	c = strchr(a, ':');
	if (c == NULL)
		return -1;
	*c++ = '\0';
	if (bench_parse_u64(a, FILL_MAX_SIZE, lo) == -1 ||
	    bench_parse_u64(c, FILL_MAX_SIZE, hi) == -1 || *lo > *hi)
		return -1;
	return 0;
}

/* bench_fill_main - `sealpost-bench fill` */
int
bench_fill_main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "spool", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 'S' },
		{ "size-dist", required_argument, NULL, 'D' },
		{ "domains", required_argument, NULL, 'k' },
		{ "domain-fmt", required_argument, NULL, 'f' },
		{ "rcpts-per-msg", required_argument, NULL, 'r' },
		{ "sender", required_argument, NULL, 'F' },
		{ "rate", required_argument, NULL, 'R' },
		{ "fsync", no_argument, NULL, 'y' },
		{ "crlf", no_argument, NULL, 'c' },
		{ "seed", required_argument, NULL, 'e' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	fill_opts_t o = {
		.n = 1, .size_min = 60000, .size_max = 60000, .ndomains = 1,
		.domain_fmt = "d%d.test", .rcpts = 1,
		.sender = "fax-noreply@fax.sealpost.test", .seed = 1,
	};
	fill_buf_t b = { 0 };
	char runid[32], dom[256];
	uint64_t i, rnd, bytes = 0;
	struct timespec start, deadline;
	double t0, el;
	int ch, size_given = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "n:h", lopts, NULL)) != -1) {
		const char *bad = NULL;

		switch (ch) {
		case 's': o.spool = optarg; break;
		case 'n':
			if (bench_parse_u64(optarg, 100000000, &o.n) == -1)
				bad = "-n";
			break;
		case 'S':
			if (bench_parse_u64(optarg, FILL_MAX_SIZE, &o.size_min) == -1)
				bad = "--size";
			o.size_max = o.size_min;
			size_given = 1;
			break;
		case 'D':
			if (fill_parse_dist(optarg, &o.size_min, &o.size_max) == -1)
				bad = "--size-dist (uniform:MIN:MAX)";
			size_given = 1;
			break;
		case 'k':
			if (bench_parse_u64(optarg, 10000000, &o.ndomains) == -1 ||
			    o.ndomains == 0)
				bad = "--domains";
			break;
		case 'f': o.domain_fmt = optarg; break;
		case 'r':
			if (bench_parse_u64(optarg, FILL_MAX_RCPTS, &o.rcpts) == -1 ||
			    o.rcpts == 0)
				bad = "--rcpts-per-msg (1..1000)";
			break;
		case 'F':
			if (strlen(optarg) > 400 || strpbrk(optarg, "<>\r\n \t") != NULL)
				bad = "--sender";
			o.sender = optarg;
			break;
		case 'R':
			if (bench_parse_u64(optarg, 10000000, &o.rate) == -1)
				bad = "--rate";
			break;
		case 'y': o.do_fsync = 1; break;
		case 'c': o.crlf = 1; break;
		case 'e':
			if (bench_parse_u64(optarg, UINT64_MAX, &o.seed) == -1)
				bad = "--seed";
			break;
		case 'q': o.quiet = 1; break;
		case 'h': fill_usage(); return EX_OK;
		default: fill_usage(); return EX_USAGE;
		}
		if (bad != NULL) {
			fprintf(stderr, "fill: invalid %s \"%s\"\n", bad, optarg);
			return EX_USAGE;
		}
	}
	if (o.spool == NULL || optind != argc) {
		fprintf(stderr, "fill: --spool DIR is required and there are no operands\n");
		fill_usage();
		return EX_USAGE;
	}
	(void)size_given;
	if (fill_domain(dom, sizeof(dom), o.domain_fmt, o.ndomains - 1) == -1 ||
	    strpbrk(dom, "<>@\r\n \t") != NULL) {
		fprintf(stderr, "fill: invalid --domain-fmt \"%s\"\n", o.domain_fmt);
		return EX_USAGE;
	}
	if (fill_mkdirs(o.spool) == -1)
		return EX_CANTCREAT;

	snprintf(runid, sizeof(runid), "%llx%x", (unsigned long long)bench_now_us(),
	    (unsigned)getpid());
	rnd = o.seed * 0x9E3779B97F4A7C15ULL + 1;
	clock_gettime(CLOCK_MONOTONIC, &start);
	t0 = bench_mono_s();
	for (i = 0; i < o.n; i++) {
		size_t size = (size_t)o.size_min;

		if (o.rate > 0) {
			/* absolute deadlines: no drift from the time spent writing */
			uint64_t ns = i * 1000000000ULL / o.rate;

			deadline = start;
			deadline.tv_sec += (time_t)(ns / 1000000000ULL);
			deadline.tv_nsec += (long)(ns % 1000000000ULL);
			if (deadline.tv_nsec >= 1000000000L) {
				deadline.tv_sec++;
				deadline.tv_nsec -= 1000000000L;
			}
			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME,
			    &deadline, NULL) == EINTR)
				;
		}
		if (o.size_max > o.size_min)
			size += (size_t)(fill_rand(&rnd) % (o.size_max - o.size_min + 1));
		fill_message(&b, &o, runid, i, size, &rnd);
		if (fill_write(&o, runid, i, &b) == -1) {
			free(b.p);
			return EX_IOERR;
		}
		bytes += b.len;
	}
	if (o.do_fsync) {
		char path[4200];
		int fd;

		snprintf(path, sizeof(path), "%s/new", o.spool);
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd == -1 || fsync(fd) == -1) {
			fprintf(stderr, "fill: fsync %s: %s\n", path, strerror(errno));
			if (fd != -1)
				close(fd);
			free(b.p);
			return EX_IOERR;
		}
		close(fd);
	}
	free(b.p);
	el = bench_mono_s() - t0;
	if (!o.quiet)
		printf("filled %llu messages (%llu bytes) into %s/new in %.3f s (%.0f msgs/s)%s\n",
		    (unsigned long long)o.n, (unsigned long long)bytes, o.spool, el,
		    el > 0 ? (double)o.n / el : 0.0, o.do_fsync ? "" : ", no fsync");
	return EX_OK;
}
