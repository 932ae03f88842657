/*
 * tests/test_spool_store.c - the spool on disk: claim (good, corrupt,
 * vanished), per-recipient state round trip, done, orphan cleanup, submit,
 * flush, queue ids, and the pure retry/state functions.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "queue/q_int.h"
#include "queue/queue.h"

static char root[64];
static q_spool_t *sp;

static const char good[] =
	"MAIL FROM:<fax-noreply@fax.example.com> RET=HDRS\n"
	"RCPT TO:<alice@example.org>\n"
	"RCPT TO:<bob@example.net>\n"
	"\n"
	"Subject: fax\n\nbody\n";

/* setup - a fresh spool in a unique temporary folder */
static void
setup(void)
{
	char err[256];

	snprintf(root, sizeof(root), "/tmp/sp-store-XXXXXX");
	cr_assert_not_null(mkdtemp(root));
	cr_assert_eq(q_spool_open(&sp, root, err, sizeof(err)), Q_OK, "%s", err);
}

/* teardown - close and remove the spool */
static void
teardown(void)
{
	char cmd[256];

	q_spool_close(sp);
	sp = NULL;
	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx %s; rm -rf %s", root, root);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", root);
}

/* put - write a file under the spool root */
static void
put(const char *rel, const char *data, size_t len)
{
	char p[256];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	cr_assert_not_null(fp = fopen(p, "w"));
	cr_assert_eq(fwrite(data, 1, len, fp), len);
	fclose(fp);
}

/* exists - 1 when root/rel exists */
static int
exists(const char *rel)
{
	char p[256];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	return lstat(p, &sb) == 0;
}

/* count - entries (dot files included, . and .. not) in root/rel */
static int
count(const char *rel)
{
	char p[256];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	cr_assert_not_null(d = opendir(p));
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* slurp - root/rel as a string (caller frees) */
static char *
slurp(const char *rel)
{
	char p[256], *buf = calloc(1, 65536);
	FILE *fp;

	snprintf(p, sizeof(p), "%s/%s", root, rel);
	cr_assert_not_null(fp = fopen(p, "r"), "%s missing", rel);
	fread(buf, 1, 65535, fp);
	fclose(fp);
	return buf;
}

/* claim_good - put NAME into new/ and claim it */
static q_msg_t *
claim_good(const char *name)
{
	char why[256];
	q_msg_t *m = NULL;

	put("new/fax-0001", good, sizeof(good) - 1);
	(void)name;
	cr_assert_eq(q_claim(sp, "fax-0001", &m, why, sizeof(why)), Q_OK, "%s", why);
	return m;
}

TestSuite(spool_store, .init = setup, .fini = teardown);

Test(spool_store, open_creates_the_folders_with_tight_modes)
{
	struct stat sb;
	char p[256];

	snprintf(p, sizeof(p), "%s/tmp", root);
	cr_assert_eq(stat(p, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0700);
	snprintf(p, sizeof(p), "%s/msg", root);
	cr_assert_eq(stat(p, &sb), 0);
	cr_assert_eq(sb.st_mode & 0027, 0, "no group write, nothing for others");
	cr_assert(exists("new") && exists("state") && exists("corrupt"));
	cr_assert_str_eq(q_spool_dir(sp, "new") + strlen(q_spool_dir(sp, "new")) - 4, "/new");
}

Test(spool_store, claim_moves_a_good_file_to_msg_with_a_fresh_id)
{
	q_msg_t *m = claim_good("fax-0001");
	char rel[64];

	cr_assert(q_id_valid(m->id), "id %s", m->id);
	snprintf(rel, sizeof(rel), "msg/%s", m->id);
	cr_assert(exists(rel));
	cr_assert_eq(count("new"), 0);
	cr_assert_not_null(m->data);
	cr_assert_eq(m->len, sizeof(good) - 1);
	cr_assert_str_eq(m->data + m->body_off, "Subject: fax\n\nbody\n");
	cr_assert_eq(m->nrcpt, 2);
	cr_assert_geq(m->arrival, (int64_t)time(NULL) - 5);
	q_msg_free(m);
}

Test(spool_store, claim_keeps_the_id_printed_by_submit)
{
	const char *rcpts[] = { "alice@example.org" };
	char id[Q_ID_LEN], err[256];
	q_msg_t *m = NULL;

	cr_assert_eq(q_submit(sp, "a@b.example", rcpts, 1, "Subject: x\n\nhi\n", 15, id, err,
			      sizeof(err)), Q_OK, "%s", err);
	cr_assert_eq(q_claim(sp, id, &m, err, sizeof(err)), Q_OK, "%s", err);
	cr_assert_str_eq(m->id, id);
	q_msg_free(m);
}

Test(spool_store, claim_moves_a_corrupt_file_aside_with_its_reason)
{
	const char bad[] = "MAIL FROM:<a@b.example>\n\nno recipients\n";
	char why[256], *text;
	q_msg_t *m = NULL;

	put("new/broken", bad, sizeof(bad) - 1);
	cr_assert_eq(q_claim(sp, "broken", &m, why, sizeof(why)), Q_CORRUPT);
	cr_assert_null(m);
	cr_assert(strstr(why, "no recipients") != NULL, "%s", why);
	cr_assert(exists("corrupt/broken"));
	cr_assert_eq(count("new"), 0);
	text = slurp("corrupt/broken.why");
	cr_assert(strstr(text, "line 2: no RCPT TO") != NULL, "%s", text);
	cr_assert(strstr(text, "time: ") != NULL, "%s", text);
	free(text);
}

Test(spool_store, corrupt_name_collision_keeps_both_files)
{
	const char bad[] = "garbage\n";
	char why[256];
	q_msg_t *m = NULL;

	put("new/dup", bad, sizeof(bad) - 1);
	cr_assert_eq(q_claim(sp, "dup", &m, why, sizeof(why)), Q_CORRUPT);
	put("new/dup", bad, sizeof(bad) - 1);
	cr_assert_eq(q_claim(sp, "dup", &m, why, sizeof(why)), Q_CORRUPT);
	cr_assert_eq(count("corrupt"), 4, "two files, two .why files");
}

Test(spool_store, claim_of_a_vanished_file_is_gone)
{
	char why[256];
	q_msg_t *m = NULL;

	cr_assert_eq(q_claim(sp, "nothere", &m, why, sizeof(why)), Q_GONE);
	cr_assert(strstr(why, "vanished") != NULL, "%s", why);
}

Test(spool_store, claim_refuses_a_symlink)
{
	char p[256], why[256];
	q_msg_t *m = NULL;

	snprintf(p, sizeof(p), "%s/new/link", root);
	cr_assert_eq(symlink("/etc/passwd", p), 0);
	cr_assert_eq(q_claim(sp, "link", &m, why, sizeof(why)), Q_CORRUPT);
	cr_assert(strstr(why, "symbolic link") != NULL, "%s", why);
	cr_assert(exists("corrupt/link"));
}

Test(spool_store, claim_refuses_an_oversized_file_without_reading_it)
{
	char p[256], why[256];
	q_msg_t *m = NULL;
	int fd;

	snprintf(p, sizeof(p), "%s/new/huge", root);
	cr_assert_neq(fd = open(p, O_CREAT | O_WRONLY, 0600), -1);
	cr_assert_eq(ftruncate(fd, (off_t)Q_MAX_FILE + 1), 0);	/* sparse */
	close(fd);
	cr_assert_eq(q_claim(sp, "huge", &m, why, sizeof(why)), Q_CORRUPT);
	cr_assert(strstr(why, "larger than") != NULL, "%s", why);
}

Test(spool_store, unreadable_file_stays_in_new_as_an_error)
{
	char p[256], why[256];
	q_msg_t *m = NULL;

	if (geteuid() == 0)
		cr_skip_test("root reads anything");
	put("new/locked", good, sizeof(good) - 1);
	snprintf(p, sizeof(p), "%s/new/locked", root);
	chmod(p, 0);
	cr_assert_eq(q_claim(sp, "locked", &m, why, sizeof(why)), Q_ERROR);
	cr_assert(exists("new/locked"));
}

Test(spool_store, state_round_trips_with_escaped_error_text)
{
	const char *err = "451 4.7.0 TLS handshake failed: \"bad cert\" 100%\n\tnext\xc3\xa9";
	q_msg_t *m = claim_good("fax-0001"), *l = NULL, *s = NULL;
	char why[256];

	q_rcpt_update(&m->rcpt[0], Q_RCPT_DEFERRED, "4.7.0", err, "mx1.example.org[192.0.2.1]:25",
		      1234567890);
	q_rcpt_update(&m->rcpt[1], Q_RCPT_SENT, "2.0.0", "250 ok", NULL, 0);
	m->rcpt[0].reported = 1;
	m->warned = 1;
	cr_assert_eq(q_record(sp, m, why, sizeof(why)), Q_OK, "%s", why);

	cr_assert_eq(q_load(sp, m->id, &l, why, sizeof(why)), Q_OK, "%s", why);
	cr_assert_eq(l->rcpt[0].status, Q_RCPT_DEFERRED);
	cr_assert_eq(l->rcpt[0].attempts, 1);
	cr_assert_eq(l->rcpt[0].next_attempt, 1234567890);
	cr_assert_str_eq(l->rcpt[0].dsn, "4.7.0");
	cr_assert_str_eq(l->rcpt[0].last_error, err);
	cr_assert_str_eq(l->rcpt[0].relay, "mx1.example.org[192.0.2.1]:25");
	cr_assert_eq(l->rcpt[0].reported, 1);
	cr_assert_eq(l->rcpt[1].status, Q_RCPT_SENT);
	cr_assert_null(l->rcpt[1].relay);
	cr_assert_eq(l->warned, 1);
	cr_assert_eq(l->arrival, m->arrival);
	cr_assert_not_null(l->data);

	cr_assert_eq(q_load_state(sp, m->id, &s, why, sizeof(why)), Q_OK, "%s", why);
	cr_assert_null(s->data, "q_load_state reads no message content");
	cr_assert_str_eq(s->sender, "fax-noreply@fax.example.com");
	cr_assert_str_eq(s->rcpt[0].last_error, err);
	cr_assert_eq(s->rcpt[1].status, Q_RCPT_SENT);
	q_msg_free(s);
	q_msg_free(l);
	q_msg_free(m);
}

Test(spool_store, load_without_state_means_every_recipient_pending)
{
	q_msg_t *m = claim_good("fax-0001"), *l = NULL;
	char why[256];

	cr_assert_eq(q_load(sp, m->id, &l, why, sizeof(why)), Q_OK, "%s", why);
	cr_assert_eq(l->rcpt[0].status, Q_RCPT_PENDING);
	cr_assert_eq(l->rcpt[1].attempts, 0);
	cr_assert_geq(l->arrival, m->arrival - 1, "arrival from the file's mtime");
	q_msg_free(l);
	q_msg_free(m);
}

Test(spool_store, state_of_another_message_is_refused)
{
	q_msg_t *m = claim_good("fax-0001"), *l = NULL;
	char why[256], rel[64], *st;

	cr_assert_eq(q_record(sp, m, why, sizeof(why)), Q_OK);
	snprintf(rel, sizeof(rel), "state/%s", m->id);
	st = slurp(rel);
	cr_assert_not_null(strstr(st, "=alice@example.org"), "%s", st);
	memcpy(strstr(st, "=alice@example.org") + 1, "alicx", 5);
	put(rel, st, strlen(st));
	cr_assert_eq(q_load(sp, m->id, &l, why, sizeof(why)), Q_CORRUPT);
	cr_assert(strstr(why, "recipient 0") != NULL, "%s", why);
	free(st);
	q_msg_free(m);
}

Test(spool_store, truncated_state_file_is_refused)
{
	q_msg_t *m = claim_good("fax-0001"), *l = NULL;
	char why[256], rel[64], *st;

	cr_assert_eq(q_record(sp, m, why, sizeof(why)), Q_OK);
	snprintf(rel, sizeof(rel), "state/%s", m->id);
	st = slurp(rel);
	put(rel, st, strlen(st) - 4);	/* "end\n" cut off */
	cr_assert_eq(q_load(sp, m->id, &l, why, sizeof(why)), Q_CORRUPT);
	cr_assert(strstr(why, "truncated") != NULL, "%s", why);
	free(st);
	q_msg_free(m);
}

Test(spool_store, record_leaves_no_temporary_file)
{
	q_msg_t *m = claim_good("fax-0001");
	char why[256];

	cr_assert_eq(q_record(sp, m, why, sizeof(why)), Q_OK);
	cr_assert_eq(q_record(sp, m, why, sizeof(why)), Q_OK);
	cr_assert_eq(count("state"), 1);
	q_msg_free(m);
}

Test(spool_store, done_removes_message_and_state)
{
	q_msg_t *m = claim_good("fax-0001");
	char why[256];

	cr_assert_eq(q_record(sp, m, why, sizeof(why)), Q_OK);
	cr_assert_eq(q_done(sp, m, why, sizeof(why)), Q_OK, "%s", why);
	cr_assert_eq(count("msg"), 0);
	cr_assert_eq(count("state"), 0);
	q_msg_free(m);
}

struct ids {
	int n;
	char id[4][Q_ID_LEN];
};

/* ids_cb - collect scanned names */
static void
ids_cb(void *arg, const char *id)
{
	struct ids *s = arg;

	if (s->n < 4)
		snprintf(s->id[s->n], Q_ID_LEN, "%s", id);
	s->n++;
}

Test(spool_store, scan_queue_lists_messages_and_removes_orphan_state)
{
	q_msg_t *m = claim_good("fax-0001");
	struct ids s = { 0 };
	char why[256];

	cr_assert_eq(q_record(sp, m, why, sizeof(why)), Q_OK);
	put("state/0000000000000aaaaaa0001", "sealpost-state 1\nend\n", 21);
	cr_assert_eq(q_scan_queue(sp, ids_cb, &s), Q_OK);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.id[0], m->id);
	cr_assert(!exists("state/0000000000000aaaaaa0001"), "orphan state removed");
	cr_assert_eq(count("state"), 1, "the live state is kept");
	q_msg_free(m);
}

Test(spool_store, scan_new_skips_dot_files)
{
	struct ids s = { 0 };

	put("new/a", "x", 1);
	put("new/.hidden", "x", 1);
	cr_assert_eq(q_scan_new(sp, ids_cb, &s), Q_OK);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.id[0], "a");
}

Test(spool_store, submit_writes_only_complete_files_into_new)
{
	const char *rcpts[] = { "alice@example.org", "bob@example.net" };
	char id[Q_ID_LEN], err[256], rel[64], *text;

	cr_assert_eq(q_submit(sp, "", rcpts, 2, "Subject: x\n\nhi\n", 15, id, err, sizeof(err)),
		     Q_OK, "%s", err);
	cr_assert(q_id_valid(id));
	cr_assert_eq(count("tmp"), 0);
	cr_assert_eq(count("new"), 1);
	snprintf(rel, sizeof(rel), "new/%s", id);
	text = slurp(rel);
	cr_assert_str_eq(text, "MAIL FROM:<>\nRCPT TO:<alice@example.org>\n"
			 "RCPT TO:<bob@example.net>\n\nSubject: x\n\nhi\n");
	free(text);
}

Test(spool_store, submit_refuses_a_bad_address_and_writes_nothing)
{
	const char *rcpts[] = { "alice@example.org", "bob" };
	char id[Q_ID_LEN], err[256];

	cr_assert_eq(q_submit(sp, "a@b.example", rcpts, 2, "x", 1, id, err, sizeof(err)), Q_CORRUPT);
	cr_assert(strstr(err, "bob: address has no domain part") != NULL, "%s", err);
	cr_assert_eq(count("tmp") + count("new"), 0);
}

Test(spool_store, flush_makes_deferred_recipients_due_and_pokes_the_engine)
{
	q_msg_t *m = claim_good("fax-0001"), *l = NULL;
	unsigned n = 99;
	char why[256];

	q_rcpt_update(&m->rcpt[0], Q_RCPT_DEFERRED, "4.4.1", "timeout", NULL, time(NULL) + 3000);
	q_rcpt_update(&m->rcpt[1], Q_RCPT_SENT, "2.0.0", "ok", NULL, 0);
	cr_assert_eq(q_record(sp, m, why, sizeof(why)), Q_OK);
	cr_assert_eq(q_flush_count(sp, &n, why, sizeof(why)), Q_OK, "%s", why);
	cr_assert_eq(n, 1);
	cr_assert(exists(Q_FLUSH_FILE));
	cr_assert_eq(q_load(sp, m->id, &l, why, sizeof(why)), Q_OK, "%s", why);
	cr_assert_eq(l->rcpt[0].next_attempt, 0);
	cr_assert_eq(l->rcpt[0].status, Q_RCPT_DEFERRED);
	cr_assert_str_eq(l->rcpt[0].last_error, "timeout");
	cr_assert_eq(l->rcpt[1].status, Q_RCPT_SENT);
	cr_assert_eq(q_flush_count(sp, &n, why, sizeof(why)), Q_OK);
	cr_assert_eq(n, 0, "nothing left to make due");
	q_msg_free(l);
	q_msg_free(m);
}

Test(queue_id, ids_are_unique_valid_and_sorted_by_time)
{
	static char ids[20000][Q_ID_LEN];
	int i;

	for (i = 0; i < 20000; i++) {
		q_id_make(ids[i]);
		cr_assert(q_id_valid(ids[i]), "%s", ids[i]);
		/* time first, then pid, then a counter: strictly increasing */
		if (i > 0)
			cr_assert_lt(strcmp(ids[i - 1], ids[i]), 0, "%s then %s", ids[i - 1], ids[i]);
	}
	cr_assert(!q_id_valid("../../etc/passwd"));
	cr_assert(!q_id_valid("0000000000000AAAAAA000001"));
}

Test(retry, delay_doubles_from_min_to_max_with_bounded_jitter)
{
	static sp_config_t cfg;
	unsigned a;

	cfg.retry_min = 300;
	cfg.retry_max = 4000;
	cr_assert_eq(q_retry_delay(&cfg, 0, 12345), 0);
	cr_assert_eq(q_retry_delay(&cfg, 1, 0), 270, "-10%% at rnd 0");
	cr_assert_lt(q_retry_delay(&cfg, 1, UINT32_MAX), 330, "below +10%%");
	cr_assert_geq(q_retry_delay(&cfg, 1, UINT32_MAX), 329);
	cr_assert_eq(q_retry_delay(&cfg, 2, 1u << 31), 600);
	cr_assert_eq(q_retry_delay(&cfg, 3, 1u << 31), 1200);
	cr_assert_eq(q_retry_delay(&cfg, 5, 1u << 31), 4000, "capped at retry_max");
	for (a = 5; a < 200; a += 13) {
		unsigned d = q_retry_delay(&cfg, a, (uint32_t)(a * 2654435761u));

		cr_assert(d >= 3600 && d < 4400, "attempt %u: %u", a, d);
	}
	cr_assert_eq(q_retry_delay(&cfg, 1000000, 0), 3600, "no overflow on many attempts");
}

Test(retry, delay_is_never_below_one_second)
{
	static sp_config_t cfg;

	cfg.retry_min = 1;
	cfg.retry_max = 1;
	cr_assert_geq(q_retry_delay(&cfg, 1, 0), 1);
	cfg.retry_min = 0;
	cfg.retry_max = 0;
	cr_assert_geq(q_retry_delay(&cfg, 3, 0), 1);
}

Test(retry, final_and_next_attempt_follow_recipient_states)
{
	q_rcpt_t r[2];
	q_msg_t m;

	memset(&m, 0, sizeof(m));
	memset(r, 0, sizeof(r));
	m.rcpt = r;
	m.nrcpt = 2;
	cr_assert_eq(q_msg_final(&m), 0);
	q_rcpt_update(&r[0], Q_RCPT_DEFERRED, "4.0.0", "later", NULL, 500);
	q_rcpt_update(&r[1], Q_RCPT_DEFERRED, "4.0.0", "later", NULL, 200);
	cr_assert_eq(q_msg_next_attempt(&m), 200);
	q_rcpt_update(&r[1], Q_RCPT_BOUNCED, "5.1.1", "no such user", "mx[1.2.3.4]:25", 0);
	cr_assert_eq(r[1].attempts, 2);
	cr_assert_str_eq(r[1].last_error, "no such user");
	cr_assert_eq(q_msg_next_attempt(&m), 500, "final recipients do not count");
	cr_assert_eq(q_msg_final(&m), 0);
	q_rcpt_update(&r[0], Q_RCPT_SENT, NULL, NULL, NULL, 0);
	cr_assert_eq(q_msg_final(&m), 1);
	cr_assert_str_eq(r[0].dsn, "");
	cr_assert_null(r[0].last_error);
	free(r[1].last_error);
	free(r[1].relay);
}

Test(spool_store, load_state_of_a_large_message_reads_only_its_envelope)
{
	/* A fax is far larger than the first read: q_load_state stops at the
	 * envelope, and the buffer keeps room for its NUL whatever the read
	 * sizes (under ASan a write past it fails this test). */
	for (size_t size = 16300; size <= 16500; size += 37) {
		size_t hlen = strlen(good), len = hlen + size;
		char *text = malloc(len), why[256];
		q_msg_t *m = NULL, *s = NULL;

		cr_assert_not_null(text);
		memcpy(text, good, hlen);
		memset(text + hlen, 'x', size);
		text[len - 1] = '\n';
		put("new/big", text, len);
		cr_assert_eq(q_claim(sp, "big", &m, why, sizeof(why)), Q_OK, "%s", why);
		cr_assert_eq(q_load_state(sp, m->id, &s, why, sizeof(why)), Q_OK, "%s", why);
		cr_assert_str_eq(s->sender, "fax-noreply@fax.example.com");
		cr_assert_eq(s->nrcpt, 2);
		cr_assert_null(s->data, "q_load_state reads no message content");
		cr_assert_eq(q_done(sp, m, why, sizeof(why)), Q_OK, "%s", why);
		q_msg_free(s);
		q_msg_free(m);
		free(text);
	}
}
