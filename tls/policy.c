/*
 * tls/policy.c - the per-domain TLS policy table ($SEALPOST_TLS_POLICY).
 *
 * tls_policy_parse_line(line, out, err) parses one line:
 *     DOMAIN LEVEL [match=a:b] [fingerprint=sha256:HEX,...] [ca=FILE]
 * returning 1 (parsed), 0 (blank or comment) or -1 with a reason in err.
 * tls_policy_load(path, &table, err) parses a file into a table the caller
 * frees with tls_policy_free(); errors read "FILE:LINE: reason".
 * tls_policy_lookup(table, domain, dflt) returns the entry for a recipient
 * domain (borrowed from the table) or dflt: an exact entry beats a
 * ".parent" entry, and the longest matching parent wins.
 *
 * Levels are encrypt, verify, secure, fingerprint; there is no plaintext
 * level, so "none" or "may" are errors, not a silent downgrade.  HEX takes
 * any case, with or without colons (as openssl prints it).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "tls/tls.h"

#define POLICY_LINE_MAX	8192
#define POLICY_MAX	65536

struct tls_policy_table {
	tls_policy_t *v;	/* sorted by domain */
	size_t	n;
};

static int domain_ok(const char *s, int allow_dot);
static int parse_domain(const char *tok, char *out, size_t outlen, int allow_lead_dot);
static int parse_match(const char *val, tls_policy_t *p, char *err, size_t errlen);
static int parse_pins(const char *val, tls_policy_t *p, char *err, size_t errlen);
static int cmp_policy(const void *a, const void *b);
static int cmp_domain_key(const void *key, const void *elem);
static const tls_policy_t *find(const tls_policy_table_t *t, const char *domain);

/* domain_ok - letters, digits, '-', '_', non-empty labels */
static int
domain_ok(const char *s, int allow_dot)
{
	size_t run = 0;

	if (allow_dot && *s == '.')
		s++;
	for (; *s; s++) {
		if (*s == '.') {
			if (run == 0)
				return 0;
			run = 0;
		} else if (isalnum((unsigned char)*s) || *s == '-' || *s == '_')
			run++;
		else
			return 0;
	}
	return run > 0;
}

/* parse_domain - lower-case copy without a trailing dot; -1 if malformed */
static int
parse_domain(const char *tok, char *out, size_t outlen, int allow_lead_dot)
{
	size_t n = strlen(tok), i;

	if (n > 0 && tok[n - 1] == '.' && n > 1)
		n--;
	if (n == 0 || n >= outlen || n > 254)
		return -1;
	for (i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)tok[i]);
	out[n] = '\0';
	return domain_ok(out, allow_lead_dot) ? 0 : -1;
}

/* parse_match - "a:b:c" names for the secure level */
static int
parse_match(const char *val, tls_policy_t *p, char *err, size_t errlen)
{
	char name[256];
	const char *s = val, *e;
	size_t n;

	if (*val == '\0') {
		snprintf(err, errlen, "match= needs at least one name");
		return -1;
	}
	while (*s) {
		e = strchr(s, ':');
		n = e ? (size_t)(e - s) : strlen(s);
		if (n == 0 || n >= sizeof(name)) {
			snprintf(err, errlen, "match=%s: empty or over-long name", val);
			return -1;
		}
		memcpy(name, s, n);
		name[n] = '\0';
		if (p->nmatch >= TLS_MAX_MATCH) {
			snprintf(err, errlen, "match=: more than %d names", TLS_MAX_MATCH);
			return -1;
		}
		if (parse_domain(name, p->match[p->nmatch], sizeof(p->match[0]), 0) < 0) {
			snprintf(err, errlen, "match=: bad host name \"%s\"", name);
			return -1;
		}
		p->nmatch++;
		s = e ? e + 1 : s + n;
		if (e && *s == '\0') {
			snprintf(err, errlen, "match=%s: empty name at the end", val);
			return -1;
		}
	}
	return 0;
}

/* parse_pins - "sha256:HEX,sha256:HEX"; colons inside HEX are ignored */
static int
parse_pins(const char *val, tls_policy_t *p, char *err, size_t errlen)
{
	const char *s = val, *e, *q;
	size_t n, digits;
	uint8_t *pin;
	int hi = -1, v;

	if (*val == '\0') {
		snprintf(err, errlen, "fingerprint= needs at least one sha256:HEX");
		return -1;
	}
	while (*s) {
		e = strchr(s, ',');
		n = e ? (size_t)(e - s) : strlen(s);
		if (n < 7 || strncasecmp(s, "sha256:", 7) != 0) {
			snprintf(err, errlen, "fingerprint: \"%.*s\" does not start with sha256: "
			    "(only SHA-256 pins are supported)", (int)(n > 80 ? 80 : n), s);
			return -1;
		}
		if (p->npins >= TLS_MAX_PINS) {
			snprintf(err, errlen, "fingerprint: more than %d pins", TLS_MAX_PINS);
			return -1;
		}
		pin = p->pins[p->npins];
		digits = 0;
		hi = -1;
		for (q = s + 7; q < s + n; q++) {
			if (*q == ':')
				continue;
			if (!isxdigit((unsigned char)*q)) {
				snprintf(err, errlen, "fingerprint: '%c' is not a hex digit", *q);
				return -1;
			}
			v = isdigit((unsigned char)*q) ? *q - '0' :
			    tolower((unsigned char)*q) - 'a' + 10;
			if (digits < 64) {
				if (hi < 0)
					hi = v;
				else {
					pin[digits / 2] = (uint8_t)(hi << 4 | v);
					hi = -1;
				}
			}
			digits++;
		}
		if (digits != 64) {
			snprintf(err, errlen, "fingerprint: SHA-256 needs 64 hex digits, got %zu",
			    digits);
			return -1;
		}
		p->npins++;
		s = e ? e + 1 : s + n;
		if (e && *s == '\0') {
			snprintf(err, errlen, "fingerprint: empty pin at the end");
			return -1;
		}
	}
	return 0;
}

/* tls_policy_parse_line - one line; 1 parsed, 0 blank/comment, -1 err */
int
tls_policy_parse_line(const char *line, tls_policy_t *out, char *err, size_t errlen)
{
	char buf[POLICY_LINE_MAX], *tok, *save = NULL, *hash;
	int ntok = 0, has_ca = 0;

	if (strlen(line) >= sizeof(buf)) {
		snprintf(err, errlen, "line longer than %d bytes", POLICY_LINE_MAX - 1);
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", line);
	if ((hash = strchr(buf, '#')) != NULL)
		*hash = '\0';
	memset(out, 0, sizeof(*out));
	for (tok = strtok_r(buf, " \t\r\n", &save); tok != NULL;
	    tok = strtok_r(NULL, " \t\r\n", &save), ntok++) {
		if (ntok == 0) {
			if (parse_domain(tok, out->domain, sizeof(out->domain), 1) < 0) {
				snprintf(err, errlen, "bad domain \"%.200s\"", tok);
				return -1;
			}
		} else if (ntok == 1) {
			if (strcasecmp(tok, "encrypt") == 0)
				out->level = SP_TLS_ENCRYPT;
			else if (strcasecmp(tok, "verify") == 0)
				out->level = SP_TLS_VERIFY;
			else if (strcasecmp(tok, "secure") == 0)
				out->level = SP_TLS_SECURE;
			else if (strcasecmp(tok, "fingerprint") == 0)
				out->level = SP_TLS_FINGERPRINT;
			else if (strcasecmp(tok, "dane") == 0 || strcasecmp(tok, "dane-only") == 0) {
				snprintf(err, errlen, "level %s is not supported yet", tok);
				return -1;
			} else {
				snprintf(err, errlen, "unknown level \"%.100s\" (allowed: encrypt, "
				    "verify, secure, fingerprint; there is no plaintext level)", tok);
				return -1;
			}
		} else if (strncasecmp(tok, "match=", 6) == 0) {
			if (out->level != SP_TLS_SECURE) {
				snprintf(err, errlen, "match= only applies to level secure");
				return -1;
			}
			if (parse_match(tok + 6, out, err, errlen) < 0)
				return -1;
		} else if (strncasecmp(tok, "fingerprint=", 12) == 0) {
			if (out->level != SP_TLS_FINGERPRINT) {
				snprintf(err, errlen, "fingerprint= only applies to level fingerprint");
				return -1;
			}
			if (parse_pins(tok + 12, out, err, errlen) < 0)
				return -1;
		} else if (strncasecmp(tok, "ca=", 3) == 0) {
			if (out->level != SP_TLS_VERIFY && out->level != SP_TLS_SECURE) {
				snprintf(err, errlen, "ca= only applies to levels verify and secure");
				return -1;
			}
			if (has_ca++ || tok[3] == '\0' || strlen(tok + 3) >= sizeof(out->ca_file)) {
				snprintf(err, errlen, "ca= needs one file name");
				return -1;
			}
			snprintf(out->ca_file, sizeof(out->ca_file), "%s", tok + 3);
		} else {
			snprintf(err, errlen, "unknown option \"%.100s\" (allowed: match=, "
			    "fingerprint=, ca=)", tok);
			return -1;
		}
	}
	if (ntok == 0)
		return 0;
	if (ntok == 1) {
		snprintf(err, errlen, "missing level after %s", out->domain);
		return -1;
	}
	if (out->level == SP_TLS_FINGERPRINT && out->npins == 0) {
		snprintf(err, errlen, "level fingerprint needs fingerprint=sha256:HEX");
		return -1;
	}
	return 1;
}

/* cmp_policy - order by domain */
static int
cmp_policy(const void *a, const void *b)
{
	return strcmp(((const tls_policy_t *)a)->domain, ((const tls_policy_t *)b)->domain);
}

/* cmp_domain_key - bsearch: a domain string against an entry */
static int
cmp_domain_key(const void *key, const void *elem)
{
	return strcmp(key, ((const tls_policy_t *)elem)->domain);
}

/* tls_policy_load - parse a policy file; -1 with "FILE:LINE: reason" */
int
tls_policy_load(const char *path, tls_policy_table_t **out, char *err, size_t errlen)
{
	char line[POLICY_LINE_MAX + 2], why[512];
	tls_policy_table_t *t;
	tls_policy_t *nv;
	size_t cap = 0, lineno = 0, i, len;
	FILE *fp;
	int r;

	*out = NULL;
	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		fclose(fp);
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		len = strlen(line);
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			snprintf(err, errlen, "%s:%zu: line longer than %d bytes", path, lineno,
			    POLICY_LINE_MAX - 1);
			goto fail;
		}
		if (t->n == cap) {
			if (cap >= POLICY_MAX) {
				snprintf(err, errlen, "%s:%zu: more than %d entries", path, lineno,
				    POLICY_MAX);
				goto fail;
			}
			cap = cap ? cap * 2 : 16;
			if ((nv = realloc(t->v, cap * sizeof(*nv))) == NULL) {
				snprintf(err, errlen, "%s:%zu: out of memory", path, lineno);
				goto fail;
			}
			t->v = nv;
		}
		r = tls_policy_parse_line(line, &t->v[t->n], why, sizeof(why));
		if (r < 0) {
			snprintf(err, errlen, "%s:%zu: %s", path, lineno, why);
			goto fail;
		}
		if (r == 0)
			continue;
		if (t->v[t->n].ca_file[0] && access(t->v[t->n].ca_file, R_OK) != 0) {
			snprintf(err, errlen, "%s:%zu: ca=%s: %s", path, lineno,
			    t->v[t->n].ca_file, strerror(errno));
			goto fail;
		}
		for (i = 0; i < t->n; i++)
			if (strcmp(t->v[i].domain, t->v[t->n].domain) == 0) {
				snprintf(err, errlen, "%s:%zu: second entry for %s", path, lineno,
				    t->v[t->n].domain);
				goto fail;
			}
		t->n++;
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: read error", path);
		goto fail;
	}
	fclose(fp);
	if (t->n > 1)
		qsort(t->v, t->n, sizeof(*t->v), cmp_policy);
	*out = t;
	return 0;
fail:
	fclose(fp);
	tls_policy_free(t);
	return -1;
}

/* find - the entry with exactly this (lower-case) domain */
static const tls_policy_t *
find(const tls_policy_table_t *t, const char *domain)
{
	if (t->n == 0)
		return NULL;
	return bsearch(domain, t->v, t->n, sizeof(*t->v), cmp_domain_key);
}

/* tls_policy_lookup - exact entry, else the longest ".parent" entry, else dflt */
const tls_policy_t *
tls_policy_lookup(const tls_policy_table_t *t, const char *domain, const tls_policy_t *dflt)
{
	char d[256];
	const tls_policy_t *p;
	const char *s;
	size_t n, i;

	if (t == NULL || domain == NULL)
		return dflt;
	n = strlen(domain);
	if (n > 0 && domain[n - 1] == '.')
		n--;
	if (n == 0 || n >= sizeof(d))
		return dflt;
	for (i = 0; i < n; i++)
		d[i] = (char)tolower((unsigned char)domain[i]);
	d[n] = '\0';
	if ((p = find(t, d)) != NULL)
		return p;
	/* ".example.com" covers a.example.com and b.a.example.com */
	for (s = strchr(d + 1, '.'); s != NULL; s = strchr(s + 1, '.'))
		if ((p = find(t, s)) != NULL)
			return p;
	return dflt;
}

/* tls_policy_free - free a table (NULL is fine) */
void
tls_policy_free(tls_policy_table_t *t)
{
	if (t == NULL)
		return;
	free(t->v);
	free(t);
}
