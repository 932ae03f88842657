/*
 * tests/test_retry.c - the retry schedule (q_retry_delay: first retry,
 * doubling, cap, jitter bounds and spread, floor) and durable queueing of
 * generated spool files (q_spool_put: complete in new/, nothing left in
 * tmp/, refused when it would not parse, a DSN claimable as a message).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/config.h"
#include "queue/q_int.h"
#include "queue/queue.h"

static sp_config_t cfg;
static char root[64];
static q_spool_t *sp;

/* spread_rnd - the i-th of n values spread over the whole 32-bit range */
static uint32_t
spread_rnd(uint32_t i, uint32_t n)
{
	return (uint32_t)(((uint64_t)i * UINT32_MAX) / (n - 1));
}

/* schedule - Postfix-like defaults: 300 s doubling up to 4000 s */
static void
schedule(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.retry_min = 300;
	cfg.retry_max = 4000;
}

/* within - assert q_retry_delay(attempts) in [base - 10%, base + 10%) for
 * many rnd values, from the lowest to the highest */
static void
within(unsigned attempts, unsigned base)
{
	uint32_t i;
	unsigned d, lo = base - base / 10, hi = base + base / 10;

	for (i = 0; i < 10000; i++) {
		d = q_retry_delay(&cfg, attempts, spread_rnd(i, 10000));
		cr_assert_geq(d, lo, "attempt %u: %u below %u", attempts, d, lo);
		cr_assert_lt(d, hi, "attempt %u: %u not below %u", attempts, d, hi);
	}
	cr_expect_eq(q_retry_delay(&cfg, attempts, 0), lo, "rnd 0 gives the lowest");
	cr_expect_geq(q_retry_delay(&cfg, attempts, UINT32_MAX), hi - 1);
}

Test(retry, first_retry_is_retry_min_with_jitter, .init = schedule)
{
	within(1, 300);
}

Test(retry, delay_doubles_with_each_attempt, .init = schedule)
{
	within(2, 600);
	within(3, 1200);
	within(4, 2400);
}

Test(retry, delay_is_capped_at_retry_max, .init = schedule)
{
	within(5, 4000);	/* 4800 capped */
	within(6, 4000);
	within(100, 4000);
	within(UINT32_MAX, 4000);
}

Test(retry, no_attempt_yet_means_due_now, .init = schedule)
{
	cr_expect_eq(q_retry_delay(&cfg, 0, 12345), 0);
}

Test(retry, jitter_spreads_messages_deferred_together, .init = schedule)
{
	static unsigned seen[4400];
	uint32_t i, x = 2463534242u;
	unsigned d, distinct = 0;

	/* thousands of messages deferred in the same second, each with its own
	 * random number (xorshift32), must not all come back in one second */
	for (i = 0; i < 5000; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		d = q_retry_delay(&cfg, 1, x);
		cr_assert_lt(d, 4400);
		if (seen[d]++ == 0)
			distinct++;
	}
	/* the window [270, 330) holds 60 seconds: nearly all of them used */
	cr_expect_geq(distinct, 55, "only %u distinct delays", distinct);
	for (d = 0; d < 4400; d++)
		cr_expect_leq(seen[d], 5000 / 60 * 2, "%u messages in second %u", seen[d], d);
}

Test(retry, never_below_one_second, .init = schedule)
{
	uint32_t i;

	cfg.retry_min = 1;
	cfg.retry_max = 1;
	for (i = 0; i < 1000; i++)
		cr_assert_geq(q_retry_delay(&cfg, 1, spread_rnd(i, 1000)), 1);
	cfg.retry_min = 0;	/* nonsense config still gives a delay */
	cfg.retry_max = 0;
	cr_expect_geq(q_retry_delay(&cfg, 3, 0), 1);
}

Test(retry, retry_max_below_retry_min_uses_retry_min, .init = schedule)
{
	cfg.retry_min = 600;
	cfg.retry_max = 60;
	within(1, 600);
	within(5, 600);
}

Test(retry, huge_bounds_do_not_overflow, .init = schedule)
{
	cfg.retry_min = UINT32_MAX / 2;
	cfg.retry_max = UINT32_MAX;
	cr_expect_geq(q_retry_delay(&cfg, 40, UINT32_MAX), UINT32_MAX / 10 * 9);
}

/* spool_setup - a fresh spool in a unique temporary folder */
static void
spool_setup(void)
{
	char err[256];

	snprintf(root, sizeof(root), "/tmp/sp-retry-XXXXXX");
	cr_assert_not_null(mkdtemp(root));
	cr_assert_eq(q_spool_open(&sp, root, err, sizeof(err)), Q_OK, "%s", err);
}

/* spool_teardown - close and remove the spool */
static void
spool_teardown(void)
{
	char cmd[256];

	q_spool_close(sp);
	sp = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", root);
}

/* count_files - entries in SPOOL/sub, dot files included */
static unsigned
count_files(const char *sub)
{
	char p[128];
	DIR *d;
	struct dirent *e;
	unsigned n = 0;

	snprintf(p, sizeof(p), "%s/%s", root, sub);
	d = opendir(p);
	cr_assert_not_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* slurp - the whole of SPOOL/sub/name (malloc'd) */
static char *
slurp(const char *sub, const char *name, size_t *len)
{
	char p[160], *buf;
	FILE *fp;
	long n;

	snprintf(p, sizeof(p), "%s/%s/%s", root, sub, name);
	fp = fopen(p, "rb");
	cr_assert_not_null(fp, "%s missing", p);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

Test(spool_put, file_appears_complete_in_new_and_tmp_is_empty,
     .init = spool_setup, .fini = spool_teardown)
{
	static const char text[] = "MAIL FROM:<>\nRCPT TO:<s@example.com>\n\nSubject: x\n\nb\n";
	char id[Q_ID_LEN], err[256], *got;
	size_t len;

	cr_assert_eq(q_spool_put(sp, text, sizeof(text) - 1, id, err, sizeof(err)), Q_OK,
		     "%s", err);
	cr_expect(q_id_valid(id), "%s", id);
	got = slurp("new", id, &len);
	cr_expect_eq(len, sizeof(text) - 1);
	cr_expect_eq(memcmp(got, text, len), 0);
	cr_expect_eq(count_files("tmp"), 0);
	cr_expect_eq(count_files("new"), 1);
	free(got);
}

Test(spool_put, each_file_gets_its_own_id, .init = spool_setup, .fini = spool_teardown)
{
	static const char text[] = "MAIL FROM:<>\nRCPT TO:<s@example.com>\n\nb\n";
	char a[Q_ID_LEN], b[Q_ID_LEN], err[256];

	cr_assert_eq(q_spool_put(sp, text, sizeof(text) - 1, a, err, sizeof(err)), Q_OK);
	cr_assert_eq(q_spool_put(sp, text, sizeof(text) - 1, b, err, sizeof(err)), Q_OK);
	cr_expect_str_neq(a, b);
	cr_expect_eq(count_files("new"), 2);
}

Test(spool_put, unparseable_text_is_refused_and_nothing_written,
     .init = spool_setup, .fini = spool_teardown)
{
	static const char bad[] = "MAIL FROM:<>\n\nno recipients\n";
	char id[Q_ID_LEN], err[256];

	cr_expect_eq(q_spool_put(sp, bad, sizeof(bad) - 1, id, err, sizeof(err)), Q_CORRUPT);
	cr_expect_not_null(strstr(err, "not a spool file"), "%s", err);
	cr_expect_eq(q_spool_put(sp, "", 0, id, err, sizeof(err)), Q_CORRUPT);
	cr_expect_eq(count_files("tmp"), 0);
	cr_expect_eq(count_files("new"), 0);
}

Test(spool_put, submit_still_writes_through_the_shared_writer,
     .init = spool_setup, .fini = spool_teardown)
{
	const char *rcpts[] = { "r@example.org" };
	char id[Q_ID_LEN], err[256], *got;
	size_t len;

	cr_assert_eq(q_submit(sp, "s@example.com", rcpts, 1, "Subject: x\n\nb\n", 14, id, err,
			      sizeof(err)), Q_OK, "%s", err);
	got = slurp("new", id, &len);
	cr_expect_str_eq(got, "MAIL FROM:<s@example.com>\nRCPT TO:<r@example.org>\n\n"
			 "Subject: x\n\nb\n");
	cr_expect_eq(count_files("tmp"), 0);
	free(got);
}

Test(spool_put, queued_dsn_is_claimed_as_a_null_sender_message,
     .init = spool_setup, .fini = spool_teardown)
{
	static const char orig[] = "MAIL FROM:<fax@example.com>\nRCPT TO:<r@example.org>\n\n"
				   "Subject: fax\n\nbody\n";
	q_msg_t m, *claimed = NULL;
	size_t idx[1] = { 0 }, dlen;
	char *dsn, id[Q_ID_LEN], err[256];

	cr_assert_eq(q_parse(orig, sizeof(orig) - 1, &m, err, sizeof(err)), Q_OK, "%s", err);
	m.data = strdup(orig);
	m.len = sizeof(orig) - 1;
	q_id_make(m.id);
	q_rcpt_update(&m.rcpt[0], Q_RCPT_BOUNCED, "5.1.1", "550 5.1.1 unknown", NULL, 0);
	cr_assert_eq(q_dsn_build(&m, idx, 1, Q_DSN_FAILED, "mta.example.com", 1796500000,
				 1 << 20, &dsn, &dlen, err, sizeof(err)), Q_OK, "%s", err);
	cr_assert_eq(q_spool_put(sp, dsn, dlen, id, err, sizeof(err)), Q_OK, "%s", err);
	cr_assert_eq(q_claim(sp, id, &claimed, err, sizeof(err)), Q_OK, "%s", err);
	cr_expect_str_eq(claimed->id, id);
	cr_expect_str_eq(claimed->sender, "");
	cr_assert_eq(claimed->nrcpt, 1);
	cr_expect_str_eq(claimed->rcpt[0].addr, "fax@example.com");
	/* a bounce of the bounce is never wanted */
	cr_expect_eq(q_dsn_wanted(claimed, &claimed->rcpt[0], Q_DSN_FAILED), 0);
	q_msg_free(claimed);
	free(dsn);
	q_msg_clear(&m);
}
