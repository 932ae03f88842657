/*
 * queue/cmd.c - the queue commands of the sealpost binary:
 *
 *	q_cmd_submit()	sealpost submit [-f SENDER] [-t] [RCPT...] < message
 *	q_cmd_queue()	sealpost queue [--json]
 *	q_cmd_flush()	sealpost flush
 *
 * Each takes the loaded configuration and the command's own argv (argv[0]
 * is the command name), prints results on stdout and problems on stderr,
 * and returns a sysexits.h code: EX_USAGE for bad arguments, EX_DATAERR
 * for a bad address or message, EX_TEMPFAIL / EX_CANTCREAT / EX_IOERR for
 * spool trouble.  Everything allocated here is freed before returning.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "queue/q_int.h"

struct strvec {
	char	**v;
	size_t	n, cap;
};

struct dom_count {
	char	*domain;
	unsigned long n;
};

struct listing {
	q_spool_t *sp;
	int	json;
	int	first;
	unsigned long nmsg, nnew;
	unsigned long nstat[4];
	struct dom_count *dom;
	size_t	ndom, domcap;
};

static int vec_add(struct strvec *v, const char *s, size_t n);
static void vec_free(struct strvec *v);
static int read_stdin(char **out, size_t *outlen);
static int parse_addr_list(const char *s, size_t n, struct strvec *out, const char *hdr);
static int emit_mailbox(const char *phrase, size_t pn, const char *angle, size_t an,
			int have_angle, struct strvec *out, const char *hdr);
static int take_header_rcpts(char *msg, size_t *len, struct strvec *out);
static void json_str(FILE *fp, const char *s);
static void text_str(FILE *fp, const char *s);
static void fmt_time(int64_t t, char *buf, size_t len);
static void list_msg(struct listing *l, const q_msg_t *msg, const char *where,
		     const char *error);
static int dom_add(struct listing *l, const char *domain);
static void collect_cb(void *arg, const char *name);
static int cmp_str(const void *a, const void *b);
static int cmp_dom(const void *a, const void *b);
static int open_spool(const sp_config_t *cfg, q_spool_t **sp);

/* vec_add - append a copy of n bytes */
static int
vec_add(struct strvec *v, const char *s, size_t n)
{
	char **nv, *c;

	if (v->n == v->cap) {
		size_t nc = v->cap ? v->cap * 2 : 16;

		if ((nv = realloc(v->v, nc * sizeof(*nv))) == NULL)
			return -1;
		v->v = nv;
		v->cap = nc;
	}
	if ((c = malloc(n + 1)) == NULL)
		return -1;
	memcpy(c, s, n);
	c[n] = '\0';
	v->v[v->n++] = c;
	return 0;
}

/* vec_free - free every string and the vector */
static void
vec_free(struct strvec *v)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		free(v->v[i]);
	free(v->v);
	memset(v, 0, sizeof(*v));
}

/* open_spool - q_spool_open with the error on stderr; a sysexits code */
static int
open_spool(const sp_config_t *cfg, q_spool_t **sp)
{
	char err[512];
	int e;

	if (q_spool_open(sp, cfg->spool[0] ? cfg->spool : "./spool", err, sizeof(err)) != Q_OK) {
		e = errno;
		fprintf(stderr, "sealpost: %s\n", err);
		return (e == EACCES || e == EPERM || e == EROFS) ? EX_CANTCREAT : EX_TEMPFAIL;
	}
	return EX_OK;
}

/* read_stdin - all of stdin, at most Q_MAX_FILE bytes; -2 when larger */
static int
read_stdin(char **out, size_t *outlen)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap), *nb;
	ssize_t r;

	if (buf == NULL)
		return -1;
	for (;;) {
		if (len == cap) {
			if (cap > Q_MAX_FILE) {
				free(buf);
				return -2;
			}
			cap = cap * 2 > (size_t)Q_MAX_FILE + 1 ? (size_t)Q_MAX_FILE + 1 : cap * 2;
			if ((nb = realloc(buf, cap)) == NULL) {
				free(buf);
				return -1;
			}
			buf = nb;
		}
		r = read(0, buf + len, cap - len);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			free(buf);
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > Q_MAX_FILE) {
		free(buf);
		return -2;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

/* emit_mailbox - one mailbox of an address list: the <angle> address when
 * there is one, else the phrase without blanks outside quotes (addr-spec
 * with comments removed).  Empty mailboxes ("undisclosed:;") are skipped. */
static int
emit_mailbox(const char *phrase, size_t pn, const char *angle, size_t an, int have_angle,
	     struct strvec *out, const char *hdr)
{
	char buf[Q_MAX_ADDR + 1], why[160];
	size_t i, n = 0;
	int inq = 0;

	if (have_angle) {
		while (an > 0 && (*angle == ' ' || *angle == '\t')) {
			angle++;
			an--;
		}
		while (an > 0 && (angle[an - 1] == ' ' || angle[an - 1] == '\t'))
			an--;
		phrase = angle;
		pn = an;
	}
	for (i = 0; i < pn; i++) {
		char c = phrase[i];

		if (c == '"' && (i == 0 || phrase[i - 1] != '\\'))
			inq = !inq;
		if (!inq && (c == ' ' || c == '\t'))
			continue;
		if (n >= Q_MAX_ADDR) {
			fprintf(stderr, "sealpost submit: %s: address longer than %d bytes\n",
				hdr, Q_MAX_ADDR);
			return EX_DATAERR;
		}
		buf[n++] = c;
	}
	buf[n] = '\0';
	if (n == 0)
		return EX_OK;
	if (q_addr_check(buf, n, why, sizeof(why)) != 0) {
		fprintf(stderr, "sealpost submit: %s: bad address %s: %s\n", hdr, buf, why);
		return EX_DATAERR;
	}
	if (vec_add(out, buf, n) == -1) {
		fprintf(stderr, "sealpost submit: out of memory\n");
		return EX_TEMPFAIL;
	}
	return EX_OK;
}

/* parse_addr_list - RFC 5322 address-list (unfolded): display names,
 * <angle> addresses, quoted strings, nested comments, groups "g: a, b;" */
static int
parse_addr_list(const char *s, size_t n, struct strvec *out, const char *hdr)
{
	char phrase[4096];
	size_t pn = 0, i, astart = 0, alen = 0;
	int have_angle = 0, depth, rc;

	for (i = 0; i <= n; i++) {
		char c = i < n ? s[i] : ',';

		if (c == '(') {			/* comment, nested, with \ escapes */
			for (depth = 0; i < n; i++) {
				if (s[i] == '\\' && i + 1 < n)
					i++;
				else if (s[i] == '(')
					depth++;
				else if (s[i] == ')' && --depth == 0)
					break;
			}
			if (pn < sizeof(phrase))
				phrase[pn++] = ' ';
			continue;
		}
		if (c == '"') {			/* quoted string kept with its quotes */
			size_t j = i;

			for (i++; i < n && s[i] != '"'; i++)
				if (s[i] == '\\' && i + 1 < n)
					i++;
			if (i >= n)
				i = n - 1;
			if (pn + (i - j + 1) < sizeof(phrase)) {
				memcpy(phrase + pn, s + j, i - j + 1);
				pn += i - j + 1;
			} else {
				pn = sizeof(phrase);
			}
			continue;
		}
		if (c == '<') {
			astart = i + 1;
			while (i < n && s[i] != '>')
				i++;
			alen = i - astart;
			have_angle = 1;
			continue;
		}
		if (c == ':' && !have_angle) {	/* group name: not an address */
			pn = 0;
			continue;
		}
		if (c == ',' || c == ';') {
			if (pn >= sizeof(phrase)) {
				fprintf(stderr, "sealpost submit: %s: address too long\n", hdr);
				return EX_DATAERR;
			}
			rc = emit_mailbox(phrase, pn, s + astart, alen, have_angle, out, hdr);
			if (rc != EX_OK)
				return rc;
			pn = 0;
			have_angle = 0;
			continue;
		}
		if (c == '\r' || c == '\n')
			c = ' ';
		if (pn < sizeof(phrase))
			phrase[pn++] = c;
	}
	return EX_OK;
}

/* take_header_rcpts - -t: addresses of To, Cc and Bcc; the Bcc fields
 * (with their continuation lines) are cut out of msg, *len shrinks */
static int
take_header_rcpts(char *msg, size_t *len, struct strvec *out)
{
	size_t pos = 0, end, fend, n = *len;
	int rc;

	while (pos < n) {
		const char *colon;
		size_t namelen;
		int is_bcc, want;

		/* an empty line (LF or CRLF) ends the header */
		if (msg[pos] == '\n' || (msg[pos] == '\r' && pos + 1 < n && msg[pos + 1] == '\n'))
			break;
		/* the field runs to a line end not followed by a blank */
		for (fend = pos; fend < n; fend++)
			if (msg[fend] == '\n' && (fend + 1 >= n ||
			    (msg[fend + 1] != ' ' && msg[fend + 1] != '\t')))
				break;
		end = fend < n ? fend + 1 : n;
		colon = memchr(msg + pos, ':', fend - pos);
		namelen = colon ? (size_t)(colon - (msg + pos)) : 0;
		is_bcc = namelen == 3 && strncasecmp(msg + pos, "bcc", 3) == 0;
		want = is_bcc || (namelen == 2 && (strncasecmp(msg + pos, "to", 2) == 0 ||
						   strncasecmp(msg + pos, "cc", 2) == 0));
		if (want) {
			char hdr[4];

			snprintf(hdr, sizeof(hdr), "%.*s", (int)namelen, msg + pos);
			rc = parse_addr_list(colon + 1, fend - (size_t)(colon + 1 - msg), out, hdr);
			if (rc != EX_OK)
				return rc;
		}
		if (is_bcc) {
			memmove(msg + pos, msg + end, n - end);
			n -= end - pos;
			continue;
		}
		pos = end;
	}
	*len = n;
	return EX_OK;
}

/* q_cmd_submit - sealpost submit [-f SENDER] [-t] [RCPT...] < message */
int
q_cmd_submit(const sp_config_t *cfg, int argc, char **argv)
{
	struct strvec rcpts = { NULL, 0, 0 };
	char sender_buf[Q_MAX_ADDR + 1], id[Q_ID_LEN], err[512];
	const char *sender = NULL;
	char *msg = NULL;
	size_t len = 0;
	int i, from_headers = 0, rc = EX_OK, e;
	q_spool_t *sp = NULL;

	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (strcmp(argv[i], "-t") == 0) {
			from_headers = 1;
		} else if (strcmp(argv[i], "-i") == 0 || strcmp(argv[i], "-oi") == 0) {
			;	/* sendmail compatibility: dots are not special here anyway */
		} else if (strncmp(argv[i], "-f", 2) == 0) {
			if (argv[i][2] != '\0')
				sender = argv[i] + 2;
			else if (i + 1 < argc)
				sender = argv[++i];
			else
				goto usage;
		} else {
			fprintf(stderr, "sealpost submit: unknown option %s\n", argv[i]);
			goto usage;
		}
	}
	for (; i < argc; i++) {
		if (vec_add(&rcpts, argv[i], strlen(argv[i])) == -1) {
			rc = EX_TEMPFAIL;
			goto out;
		}
	}
	if (!from_headers && rcpts.n == 0) {
		fprintf(stderr, "sealpost submit: no recipients (give addresses or -t)\n");
		goto usage;
	}
	if (sender == NULL) {
		struct passwd *pw = getpwuid(getuid());
		char host[256];

		if (cfg->helo_name[0] != '\0')
			snprintf(host, sizeof(host), "%s", cfg->helo_name);
		else if (gethostname(host, sizeof(host)) == -1)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		snprintf(sender_buf, sizeof(sender_buf), "%s@%s",
			 pw != NULL ? pw->pw_name : "nobody", host);
		sender = sender_buf;
	}
	if (strcmp(sender, "<>") == 0)
		sender = "";

	e = read_stdin(&msg, &len);
	if (e == -2) {
		fprintf(stderr, "sealpost submit: message too large (limit %d bytes)\n", Q_MAX_FILE);
		rc = EX_DATAERR;
		goto out;
	}
	if (e == -1) {
		fprintf(stderr, "sealpost submit: reading the message: %s\n", strerror(errno));
		rc = EX_IOERR;
		goto out;
	}
	if (len == 0) {
		fprintf(stderr, "sealpost submit: empty message\n");
		rc = EX_DATAERR;
		goto out;
	}
	if (from_headers && (rc = take_header_rcpts(msg, &len, &rcpts)) != EX_OK)
		goto out;
	if (rcpts.n == 0) {
		fprintf(stderr, "sealpost submit: no recipients in To, Cc or Bcc\n");
		rc = EX_USAGE;
		goto out;
	}
	if ((rc = open_spool(cfg, &sp)) != EX_OK)
		goto out;
	e = q_submit(sp, sender, (const char *const *)rcpts.v, rcpts.n, msg, len, id,
		     err, sizeof(err));
	if (e == Q_CORRUPT) {
		fprintf(stderr, "sealpost submit: %s\n", err);
		rc = EX_DATAERR;
	} else if (e != Q_OK) {
		e = errno;
		fprintf(stderr, "sealpost submit: %s\n", err);
		rc = (e == EACCES || e == EPERM || e == EROFS) ? EX_CANTCREAT : EX_TEMPFAIL;
	} else {
		printf("%s\n", id);
		fflush(stdout);
	}
out:
	q_spool_close(sp);
	free(msg);
	vec_free(&rcpts);
	return rc;
usage:
	fprintf(stderr, "usage: sealpost submit [-f SENDER] [-t] [RCPT...] < message\n");
	vec_free(&rcpts);
	return EX_USAGE;
}

/* json_str - a JSON string; invalid UTF-8 bytes become U+FFFD */
static void
json_str(FILE *fp, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n, ul;

	if (s == NULL) {
		fputs("null", fp);
		return;
	}
	n = strlen(s);
	fputc('"', fp);
	while (n > 0) {
		if (*p == '"' || *p == '\\') {
			fprintf(fp, "\\%c", *p);
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(fp, "\\u%04x", *p);
		} else if (*p >= 0x80) {
			if ((ul = q_utf8_len(p, n)) == 0) {
				fputs("\\ufffd", fp);
			} else {
				fwrite(p, 1, ul, fp);
				p += ul;
				n -= ul;
				continue;
			}
		} else {
			fputc(*p, fp);
		}
		p++;
		n--;
	}
	fputc('"', fp);
}

/* text_str - text for a terminal: control bytes shown as '?' */
static void
text_str(FILE *fp, const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		fputc(((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s, fp);
}

/* fmt_time - "2026-12-04 20:06:53Z" */
static void
fmt_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm);
}

/* dom_add - one more non-final recipient for domain.  A linear search:
 * O(domains) per recipient, fine for a listing command; fax queues go to
 * few domains. */
static int
dom_add(struct listing *l, const char *domain)
{
	size_t i;

	for (i = 0; i < l->ndom; i++) {
		if (strcmp(l->dom[i].domain, domain) == 0) {
			l->dom[i].n++;
			return 0;
		}
	}
	if (l->ndom == l->domcap) {
		size_t nc = l->domcap ? l->domcap * 2 : 16;
		struct dom_count *nd = realloc(l->dom, nc * sizeof(*nd));

		if (nd == NULL)
			return -1;
		l->dom = nd;
		l->domcap = nc;
	}
	if ((l->dom[l->ndom].domain = strdup(domain)) == NULL)
		return -1;
	l->dom[l->ndom++].n = 1;
	return 0;
}

/* list_msg - print one message (JSON object or text block) and count it */
static void
list_msg(struct listing *l, const q_msg_t *msg, const char *where, const char *error)
{
	char t[32];
	size_t i;

	l->nmsg++;
	if (strcmp(where, "new") == 0)
		l->nnew++;
	if (l->json) {
		fputs(l->first ? "\n    " : ",\n    ", stdout);
		l->first = 0;
		fputs("{\"id\": ", stdout);
		json_str(stdout, msg->id);
		printf(", \"queue\": \"%s\", \"arrival\": ", where);
		if (msg->arrival > 0)
			printf("%lld", (long long)msg->arrival);
		else
			fputs("null", stdout);
		fputs(", \"sender\": ", stdout);
		json_str(stdout, error != NULL ? NULL : msg->sender);
		if (error != NULL) {
			fputs(", \"error\": ", stdout);
			json_str(stdout, error);
		}
		fputs(", \"recipients\": [", stdout);
	} else {
		if (msg->arrival > 0)
			fmt_time(msg->arrival, t, sizeof(t));
		else
			snprintf(t, sizeof(t), "%-20s", "-");
		printf("%-24s %s  ", msg->id, t);
		if (error != NULL) {
			printf("(unreadable: ");
			text_str(stdout, error);
			printf(")");
		} else {
			text_str(stdout, msg->sender[0] ? msg->sender : "<>");
		}
		printf("%s\n", strcmp(where, "new") == 0 ? "  [new, not yet picked up]" : "");
	}
	for (i = 0; i < msg->nrcpt; i++) {
		const q_rcpt_t *r = &msg->rcpt[i];
		int final = r->status == Q_RCPT_SENT || r->status == Q_RCPT_BOUNCED;

		if ((unsigned)r->status < 4)
			l->nstat[r->status]++;
		if (!final)
			dom_add(l, r->domain);
		if (l->json) {
			fputs(i ? ", {\"address\": " : "{\"address\": ", stdout);
			json_str(stdout, r->addr);
			printf(", \"status\": \"%s\", \"attempts\": %u, \"next_attempt\": ",
			       q_rcpt_status_name(r->status), r->attempts);
			if (final)
				fputs("null", stdout);
			else
				printf("%lld", (long long)r->next_attempt);
			fputs(", \"dsn\": ", stdout);
			json_str(stdout, r->dsn[0] ? r->dsn : NULL);
			fputs(", \"last_error\": ", stdout);
			json_str(stdout, r->last_error);
			fputs("}", stdout);
		} else {
			printf("    %-40s %-8s", r->addr, q_rcpt_status_name(r->status));
			if (r->attempts > 0)
				printf(" attempts=%u", r->attempts);
			if (!final && r->next_attempt > 0) {
				fmt_time(r->next_attempt, t, sizeof(t));
				printf(" next=%s", t);
			}
			if (r->dsn[0])
				printf(" dsn=%s", r->dsn);
			if (r->last_error != NULL) {
				printf(" (");
				text_str(stdout, r->last_error);
				printf(")");
			}
			printf("\n");
		}
	}
	if (l->json)
		fputs("]}", stdout);
}

/* collect_cb - gather directory names for sorting */
static void
collect_cb(void *arg, const char *name)
{
	vec_add(arg, name, strlen(name));
}

/* cmp_str - qsort on strings (ids sort by arrival time) */
static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* cmp_dom - most recipients first, then by name */
static int
cmp_dom(const void *a, const void *b)
{
	const struct dom_count *x = a, *y = b;

	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	return strcmp(x->domain, y->domain);
}

/* q_cmd_queue - sealpost queue [--json].  Messages are printed as they are
 * read (one in memory at a time, envelope only), so memory stays small
 * however long the queue: only the sorted name list and the per-domain
 * counts grow with it.  In JSON, "counts" comes after "messages" for that
 * reason (key order carries no meaning in JSON). */
int
q_cmd_queue(const sp_config_t *cfg, int argc, char **argv)
{
	struct listing l;
	struct strvec names = { NULL, 0, 0 };
	q_spool_t *sp = NULL;
	char why[512];
	size_t i;
	int pass, rc;

	memset(&l, 0, sizeof(l));
	l.first = 1;
	for (i = 1; i < (size_t)argc; i++) {
		if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0) {
			l.json = 1;
		} else {
			fprintf(stderr, "usage: sealpost queue [--json]\n");
			return EX_USAGE;
		}
	}
	if ((rc = open_spool(cfg, &sp)) != EX_OK)
		return rc;
	l.sp = sp;
	if (l.json)
		fputs("{\"messages\": [", stdout);

	for (pass = 0; pass < 2; pass++) {
		const char *where = pass == 0 ? "queued" : "new";

		if (pass == 0) {
			q_scan_queue(sp, collect_cb, &names);
		} else {
			q_scan_new(sp, collect_cb, &names);
		}
		if (names.n > 0)
			qsort(names.v, names.n, sizeof(char *), cmp_str);
		for (i = 0; i < names.n; i++) {
			q_msg_t *msg = NULL;
			int e = pass == 0 ? q_load_state(sp, names.v[i], &msg, why, sizeof(why))
					  : q_load_new(sp, names.v[i], &msg, why, sizeof(why));

			if (e == Q_GONE)
				continue;	/* delivered or claimed while we listed */
			if (e != Q_OK) {
				q_msg_t stub;

				memset(&stub, 0, sizeof(stub));
				snprintf(stub.id, sizeof(stub.id), "%.*s", Q_ID_LEN - 1,
					 names.v[i]);
				list_msg(&l, &stub, where, why);
				continue;
			}
			list_msg(&l, msg, where, NULL);
			q_msg_free(msg);
		}
		vec_free(&names);
	}

	if (l.ndom > 0)
		qsort(l.dom, l.ndom, sizeof(*l.dom), cmp_dom);
	if (l.json) {
		printf("%s],\n  \"counts\": {\"messages\": %lu, \"new\": %lu, \"queued\": %lu, "
		       "\"pending\": %lu, \"deferred\": %lu, \"sent\": %lu, \"bounced\": %lu, "
		       "\"domains\": {", l.first ? "" : "\n  ", l.nmsg, l.nnew, l.nmsg - l.nnew,
		       l.nstat[Q_RCPT_PENDING], l.nstat[Q_RCPT_DEFERRED],
		       l.nstat[Q_RCPT_SENT], l.nstat[Q_RCPT_BOUNCED]);
		for (i = 0; i < l.ndom; i++) {
			fputs(i ? ", " : "", stdout);
			json_str(stdout, l.dom[i].domain);
			printf(": %lu", l.dom[i].n);
		}
		printf("}}}\n");
	} else if (l.nmsg == 0) {
		printf("Queue is empty\n");
	} else {
		printf("-- %lu message%s (%lu new, %lu queued); recipients: %lu pending, "
		       "%lu deferred, %lu sent, %lu bounced\n", l.nmsg, l.nmsg == 1 ? "" : "s",
		       l.nnew, l.nmsg - l.nnew, l.nstat[Q_RCPT_PENDING],
		       l.nstat[Q_RCPT_DEFERRED], l.nstat[Q_RCPT_SENT], l.nstat[Q_RCPT_BOUNCED]);
		if (l.ndom > 0) {
			printf("-- waiting by domain:");
			for (i = 0; i < l.ndom; i++)
				printf(" %s=%lu", l.dom[i].domain, l.dom[i].n);
			printf("\n");
		}
	}
	for (i = 0; i < l.ndom; i++)
		free(l.dom[i].domain);
	free(l.dom);
	q_spool_close(sp);
	return fflush(stdout) == 0 ? EX_OK : EX_IOERR;
}

/* q_cmd_flush - sealpost flush: deferred recipients due now, engine poked */
int
q_cmd_flush(const sp_config_t *cfg, int argc, char **argv)
{
	q_spool_t *sp = NULL;
	unsigned n = 0;
	char err[512];
	int rc;

	(void)argv;
	if (argc > 1) {
		fprintf(stderr, "usage: sealpost flush\n");
		return EX_USAGE;
	}
	if ((rc = open_spool(cfg, &sp)) != EX_OK)
		return rc;
	rc = q_flush_count(sp, &n, err, sizeof(err));
	q_spool_close(sp);
	if (rc != Q_OK) {
		fprintf(stderr, "sealpost flush: %s\n", err);
		printf("%u message%s made due (with errors)\n", n, n == 1 ? "" : "s");
		return EX_TEMPFAIL;
	}
	printf("%u message%s made due\n", n, n == 1 ? "" : "s");
	return EX_OK;
}
