/*
 * engine/main.c - the sealpost command: run, submit, queue, flush, config.
 *
 * Configuration is read and validated once, before anything else; an
 * invalid value stops every command (EX_CONFIG) with a message naming the
 * variable, the value and what is allowed.  `sealpost config` prints the
 * effective configuration and exits non-zero when it is invalid.
 */
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "common/config.h"
#include "common/log.h"
#include "engine/engine.h"
#include "queue/queue.h"

static void usage(FILE *fp);

/* usage - the synopsis of every command */
static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: sealpost run [--drain]         deliver from the spool until stopped\n"
	    "       sealpost submit [-f SENDER] [-t] [RCPT...] < message\n"
	    "       sealpost queue [--json]        list the queue\n"
	    "       sealpost flush                 make deferred messages due now\n"
	    "       sealpost config                print the effective configuration\n"
	    "Configuration: SEALPOST_* environment variables (see `sealpost config`).\n");
}

int
main(int argc, char **argv)
{
	static sp_config_t cfg;
	char err[1024];
	int ok;

	if (argc < 2) {
		usage(stderr);
		return EX_USAGE;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return EX_OK;
	}
	ok = sp_config_load(&cfg, NULL, err, sizeof(err)) == 0;
	if (strcmp(argv[1], "config") == 0) {
		if (!ok) {
			fprintf(stderr, "sealpost: invalid configuration: %s\n", err);
			return EX_CONFIG;
		}
		sp_config_print(&cfg, stdout);
		return EX_OK;
	}
	if (!ok) {
		fprintf(stderr, "sealpost: invalid configuration: %s\n", err);
		return EX_CONFIG;
	}
	sp_log_init(cfg.log_format, cfg.log_level, 2);

	if (strcmp(argv[1], "run") == 0) {
		int drain = 0;

		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--drain") == 0) {
				drain = 1;
			} else {
				fprintf(stderr, "sealpost run: unknown option %s\n", argv[i]);
				usage(stderr);
				return EX_USAGE;
			}
		}
		/*
		 * Message buffers (tens of KB each) come and go thousands of
		 * times a second: keep freed memory in the heap instead of
		 * handing it back, or every message pays fresh zeroed pages
		 * (measured: ~9% of engine CPU in clear_page).  The in-flight
		 * limit bounds what the heap can grow to.
		 */
		mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
		mallopt(M_TRIM_THRESHOLD, 128 * 1024 * 1024);
		return eng_run(&cfg, drain);
	}
	if (strcmp(argv[1], "submit") == 0)
		return q_cmd_submit(&cfg, argc - 1, argv + 1);
	if (strcmp(argv[1], "queue") == 0)
		return q_cmd_queue(&cfg, argc - 1, argv + 1);
	if (strcmp(argv[1], "flush") == 0)
		return q_cmd_flush(&cfg, argc - 1, argv + 1);
	fprintf(stderr, "sealpost: unknown command %s\n", argv[1]);
	usage(stderr);
	return EX_USAGE;
}
