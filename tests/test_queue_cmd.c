/*
 * tests/test_queue_cmd.c - the submit / queue / flush commands as a user
 * runs them: stdin in, spool files and stdout out, sysexits codes.
 * Each criterion test runs in its own process, so redirecting fds is safe.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "queue/q_int.h"
#include "queue/queue.h"

static char root[64];
static sp_config_t cfg;
static char outpath[128];

/* setup - a spool folder and a file that will receive stdout */
static void
setup(void)
{
	snprintf(root, sizeof(root), "/tmp/sp-cmd-XXXXXX");
	cr_assert_not_null(mkdtemp(root));
	snprintf(cfg.spool, sizeof(cfg.spool), "%s/spool", root);
	snprintf(cfg.helo_name, sizeof(cfg.helo_name), "fax.example.com");
	snprintf(outpath, sizeof(outpath), "%s/stdout", root);
}

/* teardown - remove the folder */
static void
teardown(void)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", root);
}

/* run - call a command with stdin from text and stdout into outpath */
static int
run(int (*fn)(const sp_config_t *, int, char **), const char *text, int argc, char **argv)
{
	char inpath[128];
	int in, out, save_in = dup(0), save_out = dup(1), rc;

	snprintf(inpath, sizeof(inpath), "%s/stdin", root);
	in = open(inpath, O_CREAT | O_TRUNC | O_RDWR, 0600);
	cr_assert_eq(write(in, text, strlen(text)), (ssize_t)strlen(text));
	lseek(in, 0, SEEK_SET);
	out = open(outpath, O_CREAT | O_TRUNC | O_WRONLY, 0600);
	fflush(stdout);
	dup2(in, 0);
	dup2(out, 1);
	rc = fn(&cfg, argc, argv);
	fflush(stdout);
	dup2(save_in, 0);
	dup2(save_out, 1);
	close(in);
	close(out);
	close(save_in);
	close(save_out);
	return rc;
}

/* slurp - a whole file as a string (caller frees) */
static char *
slurp(const char *path)
{
	char *buf = calloc(1, 65536);
	FILE *fp = fopen(path, "r");

	cr_assert_not_null(fp, "%s missing", path);
	fread(buf, 1, 65535, fp);
	fclose(fp);
	return buf;
}

/* submitted - the spool file of the id printed on stdout (caller frees) */
static char *
submitted(void)
{
	char *out = slurp(outpath), path[4200];

	out[strcspn(out, "\n")] = '\0';
	cr_assert(q_id_valid(out), "stdout \"%s\" is not a queue id", out);
	snprintf(path, sizeof(path), "%s/new/%s", cfg.spool, out);
	free(out);
	return slurp(path);
}

TestSuite(queue_cmd, .init = setup, .fini = teardown);

Test(queue_cmd, submit_prints_the_id_of_the_file_in_new)
{
	char *argv[] = { "submit", "-f", "fax@fax.example.com", "alice@example.org", NULL };
	char *f;

	cr_assert_eq(run(q_cmd_submit, "Subject: x\n\nhi\n", 4, argv), EX_OK);
	f = submitted();
	cr_assert_str_eq(f, "MAIL FROM:<fax@fax.example.com>\nRCPT TO:<alice@example.org>\n\n"
			 "Subject: x\n\nhi\n");
	free(f);
}

Test(queue_cmd, submit_default_sender_is_user_at_helo_name)
{
	char *argv[] = { "submit", "alice@example.org", NULL };
	char *f;

	cr_assert_eq(run(q_cmd_submit, "x\n", 2, argv), EX_OK);
	f = submitted();
	cr_assert(strstr(f, "@fax.example.com>\n") != NULL, "%s", f);
	free(f);
}

Test(queue_cmd, submit_null_sender)
{
	char *argv[] = { "submit", "-f", "<>", "alice@example.org", NULL };
	char *f;

	cr_assert_eq(run(q_cmd_submit, "x\n", 4, argv), EX_OK);
	f = submitted();
	cr_assert(strncmp(f, "MAIL FROM:<>\n", 13) == 0, "%s", f);
	free(f);
}

Test(queue_cmd, submit_t_reads_to_cc_bcc_and_drops_bcc)
{
	char *argv[] = { "submit", "-t", NULL };
	const char *msg =
		"From: Fax <fax@fax.example.com>\n"
		"To: Alice Example <alice@example.org>, \"Bob, Jr.\" <bob@example.net>\n"
		"Cc: carol@example.com (Carol (the boss)),\n"
		"  dave@example.com\n"
		"BCC: secret@example.org,\n"
		"\tother@example.org\n"
		"Subject: To: not@a.header\n"
		"\n"
		"Bcc: in the body stays\n";
	char *f;

	cr_assert_eq(run(q_cmd_submit, msg, 2, argv), EX_OK);
	f = submitted();
	cr_assert(strstr(f, "RCPT TO:<alice@example.org>\n") != NULL, "%s", f);
	cr_assert(strstr(f, "RCPT TO:<bob@example.net>\n") != NULL, "%s", f);
	cr_assert(strstr(f, "RCPT TO:<carol@example.com>\n") != NULL, "%s", f);
	cr_assert(strstr(f, "RCPT TO:<dave@example.com>\n") != NULL, "%s", f);
	cr_assert(strstr(f, "RCPT TO:<secret@example.org>\n") != NULL, "%s", f);
	cr_assert(strstr(f, "RCPT TO:<other@example.org>\n") != NULL, "%s", f);
	cr_assert(strstr(f, "not@a.header") == strstr(f, "Subject: To: not@a.header") + 13);
	cr_assert_null(strstr(f, "BCC:"), "Bcc header removed: %s", f);
	cr_assert_null(strstr(f, "\tother@"), "its continuation line too: %s", f);
	cr_assert_not_null(strstr(f, "\nSubject: To: not@a.header\n\nBcc: in the body stays\n"));
	free(f);
}

Test(queue_cmd, submit_t_understands_groups_and_crlf)
{
	char *argv[] = { "submit", "-t", "extra@example.org", NULL };
	const char *msg = "To: undisclosed-recipients:;\r\nCc: team: a@example.org, b@example.org;\r\n"
			  "\r\nhi\r\n";
	char *f;

	cr_assert_eq(run(q_cmd_submit, msg, 3, argv), EX_OK);
	f = submitted();
	cr_assert(strstr(f, "RCPT TO:<extra@example.org>\n") != NULL, "%s", f);
	cr_assert(strstr(f, "RCPT TO:<a@example.org>\n") != NULL, "%s", f);
	cr_assert(strstr(f, "RCPT TO:<b@example.org>\n") != NULL, "%s", f);
	cr_assert_null(strstr(f, "RCPT TO:<undisclosed"), "a group name is no address: %s", f);
	free(f);
}

Test(queue_cmd, submit_bad_address_is_a_data_error)
{
	char *argv[] = { "submit", "alice", NULL };

	cr_assert_eq(run(q_cmd_submit, "x\n", 2, argv), EX_DATAERR);
}

Test(queue_cmd, submit_bad_header_address_is_a_data_error)
{
	char *argv[] = { "submit", "-t", NULL };

	cr_assert_eq(run(q_cmd_submit, "To: Alice <alice@>\n\nx\n", 2, argv), EX_DATAERR);
}

Test(queue_cmd, submit_without_recipients_is_a_usage_error)
{
	char *argv[] = { "submit", NULL };
	char *argv_t[] = { "submit", "-t", NULL };

	cr_assert_eq(run(q_cmd_submit, "x\n", 1, argv), EX_USAGE);
	cr_assert_eq(run(q_cmd_submit, "Subject: none\n\nx\n", 2, argv_t), EX_USAGE);
}

Test(queue_cmd, submit_empty_message_is_a_data_error)
{
	char *argv[] = { "submit", "alice@example.org", NULL };

	cr_assert_eq(run(q_cmd_submit, "", 2, argv), EX_DATAERR);
}

Test(queue_cmd, queue_json_lists_new_and_claimed_messages)
{
	char *sub[] = { "submit", "-f", "fax@fax.example.com", "alice@example.org",
			"bob@example.net", NULL };
	char *argv[] = { "queue", "--json", NULL };
	char why[256], *out;
	q_spool_t *sp;
	q_msg_t *m = NULL;
	char id[Q_ID_LEN];

	cr_assert_eq(run(q_cmd_submit, "x\n", 5, sub), EX_OK);
	out = slurp(outpath);
	snprintf(id, sizeof(id), "%.*s", Q_ID_LEN - 1, out);
	free(out);
	cr_assert_eq(q_spool_open(&sp, cfg.spool, why, sizeof(why)), Q_OK);
	cr_assert_eq(q_claim(sp, id, &m, why, sizeof(why)), Q_OK, "%s", why);
	q_rcpt_update(&m->rcpt[1], Q_RCPT_DEFERRED, "4.7.0", "TLS \"failed\"\n", NULL, 1900000000);
	cr_assert_eq(q_record(sp, m, why, sizeof(why)), Q_OK);
	q_msg_free(m);
	q_spool_close(sp);
	cr_assert_eq(run(q_cmd_submit, "y\n", 5, sub), EX_OK);

	cr_assert_eq(run(q_cmd_queue, "", 2, argv), EX_OK);
	out = slurp(outpath);
	cr_assert(strstr(out, id) != NULL, "%s", out);
	cr_assert(strstr(out, "\"address\": \"bob@example.net\", \"status\": \"deferred\", "
			 "\"attempts\": 1, \"next_attempt\": 1900000000") != NULL, "%s", out);
	cr_assert(strstr(out, "\"last_error\": \"TLS \\\"failed\\\"\\u000a\"") != NULL, "%s", out);
	cr_assert(strstr(out, "\"queue\": \"new\"") != NULL, "%s", out);
	cr_assert(strstr(out, "\"messages\": 2, \"new\": 1, \"queued\": 1, \"pending\": 3, "
			 "\"deferred\": 1") != NULL, "%s", out);
	cr_assert(strstr(out, "\"example.org\": 2") != NULL, "%s", out);
	free(out);
}

Test(queue_cmd, queue_text_on_an_empty_queue)
{
	char *argv[] = { "queue", NULL };
	char *out;

	cr_assert_eq(run(q_cmd_queue, "", 1, argv), EX_OK);
	out = slurp(outpath);
	cr_assert_str_eq(out, "Queue is empty\n");
	free(out);
}

Test(queue_cmd, queue_rejects_unknown_options)
{
	char *argv[] = { "queue", "--yaml", NULL };

	cr_assert_eq(run(q_cmd_queue, "", 2, argv), EX_USAGE);
}

Test(queue_cmd, flush_reports_how_many_messages_were_made_due)
{
	char *argv[] = { "flush", NULL };
	char *out;

	cr_assert_eq(run(q_cmd_flush, "", 1, argv), EX_OK);
	out = slurp(outpath);
	cr_assert_str_eq(out, "0 messages made due\n");
	free(out);
}
