/*
 * tests/tsan/runner.c - main() for test binaries built against the TSan
 * stand-in criterion.h (see there for why criterion itself cannot run
 * under ThreadSanitizer).
 *
 * Every registered test runs in a forked child (suite .init, test .init,
 * body, test .fini, suite .fini), JOBS at a time (--jobs=N, default 2),
 * killed after its timeout times TSAN_SLOWDOWN (10).  A failed cr_assert
 * ends the child with 1; a failed cr_expect marks it failed and goes on;
 * a ThreadSanitizer report ends it with TSan's exitcode (66).  The closing
 * line is criterion's "Synthesis: Tested: N | Passing: N | Failing: N |
 * Crashing: N", and the exit status is 1 when anything failed.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "criterion/criterion.h"

#define MAX_TESTS	512
#define MAX_SUITES	32
#define TSAN_SLOWDOWN	10
#define DEFAULT_TIMEOUT	60.0

struct test {
	const char		*suite;
	const char		*name;
	void			(*fn)(void);
	const struct cri_cfg	*cfg;
	pid_t			 pid;
};

struct suite {
	const char		*name;
	const struct cri_cfg	*cfg;
};

static struct test	tests[MAX_TESTS];
static size_t		ntests;
static struct suite	suites[MAX_SUITES];
static size_t		nsuites;
static int		failed;		/* in a child: a cr_expect failed */

static const struct cri_cfg *suite_cfg(const char *);
static void	run_child(const struct test *);

/* cri_register_test - called by each Test()'s constructor */
void
cri_register_test(const char *suite, const char *name, void (*fn)(void),
    const struct cri_cfg *cfg)
{
	if (ntests == MAX_TESTS) {
		fprintf(stderr, "tsan runner: more than %d tests\n", MAX_TESTS);
		exit(2);
	}
	tests[ntests].suite = suite;
	tests[ntests].name = name;
	tests[ntests].fn = fn;
	tests[ntests].cfg = cfg;
	ntests++;
}

/* cri_register_suite - called by each TestSuite()'s constructor */
void
cri_register_suite(const char *name, const struct cri_cfg *cfg)
{
	if (nsuites == MAX_SUITES) {
		fprintf(stderr, "tsan runner: more than %d suites\n", MAX_SUITES);
		exit(2);
	}
	suites[nsuites].name = name;
	suites[nsuites].cfg = cfg;
	nsuites++;
}

/* cri_report - one assertion's outcome; a failed fatal one ends the test */
void
cri_report(int ok, int fatal, const char *file, int line, const char *what,
    const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return;
	fprintf(stderr, "[----] %s:%d: Assertion failed: %s", file, line, what);
	if (fmt[0] != '\0') {
		fputs(": ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	fputc('\n', stderr);
	failed = 1;
	if (fatal)
		exit(1);
}

/* suite_cfg - the TestSuite() settings of a suite, or NULL */
static const struct cri_cfg *
suite_cfg(const char *name)
{
	size_t i;

	for (i = 0; i < nsuites; i++)
		if (strcmp(suites[i].name, name) == 0)
			return suites[i].cfg;
	return NULL;
}

/* run_child - the body of one test's process */
static void
run_child(const struct test *t)
{
	const struct cri_cfg *s = suite_cfg(t->suite);
	double timeout = t->cfg->timeout > 0 ? t->cfg->timeout :
	    s != NULL && s->timeout > 0 ? s->timeout : DEFAULT_TIMEOUT;

	alarm((unsigned)(timeout * TSAN_SLOWDOWN));
	if (s != NULL && s->init != NULL)
		s->init();
	if (t->cfg->init != NULL)
		t->cfg->init();
	t->fn();
	if (t->cfg->fini != NULL)
		t->cfg->fini();
	if (s != NULL && s->fini != NULL)
		s->fini();
	exit(failed ? 1 : 0);
}

/* main - run every test, JOBS at a time; criterion's Synthesis line */
int
main(int argc, char **argv)
{
	size_t next = 0, running = 0, i, pass = 0, fail = 0, crash = 0, tested = 0;
	int jobs = 2, st, a;
	pid_t pid;

	for (a = 1; a < argc; a++)
		if (strncmp(argv[a], "--jobs=", 7) == 0 && atoi(argv[a] + 7) > 0)
			jobs = atoi(argv[a] + 7);
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (next < ntests || running > 0) {
		while (next < ntests && running < (size_t)jobs) {
			struct test *t = &tests[next++];
			const struct cri_cfg *s = suite_cfg(t->suite);

			if (t->cfg->disabled || (s != NULL && s->disabled))
				continue;
			fflush(NULL);
			if ((t->pid = fork()) == -1) {
				perror("tsan runner: fork");
				return 2;
			}
			if (t->pid == 0)
				run_child(t);
			running++;
			tested++;
		}
		if (running == 0)
			break;
		if ((pid = waitpid(-1, &st, 0)) == -1) {
			perror("tsan runner: waitpid");
			return 2;
		}
		for (i = 0; i < ntests && tests[i].pid != pid; i++)
			;
		if (i == ntests)
			continue;
		running--;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			pass++;
			printf("[PASS] %s::%s\n", tests[i].suite, tests[i].name);
		} else if (WIFEXITED(st)) {
			fail++;
			printf("[FAIL] %s::%s: exit %d%s\n", tests[i].suite, tests[i].name,
			    WEXITSTATUS(st), WEXITSTATUS(st) == 66 ? " (ThreadSanitizer report)" : "");
		} else {
			crash++;
			printf("[CRASH] %s::%s: signal %d%s\n", tests[i].suite, tests[i].name,
			    WTERMSIG(st), WTERMSIG(st) == SIGALRM ? " (timeout)" : "");
		}
	}
	printf("[====] Synthesis: Tested: %zu | Passing: %zu | Failing: %zu | Crashing: %zu\n",
	    tested, pass, fail, crash);
	return fail + crash > 0 ? 1 : 0;
}
