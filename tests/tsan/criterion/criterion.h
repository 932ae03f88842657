/*
 * tests/tsan/criterion/criterion.h - a minimal stand-in for criterion, for
 * running the threaded unit tests under ThreadSanitizer.
 *
 * Why: criterion (2.4, through BoxFort) maps its shared arena at random
 * fixed addresses between 0x2000_0000_0000 and 0x6000_0000_0000, which is
 * where TSan keeps its shadow and reserved ranges, so every criterion
 * binary built with -fsanitize=thread dies at start ("Could not initialize
 * inheritable arena", upstream Snaipe/Criterion#274, open).  The TSan build
 * (SEALPOST_TSAN=ON, tests/CMakeLists.txt) compiles the same test files
 * against this header and tests/tsan/runner.c instead.
 *
 * Only what the threaded tests use is here: Test, TestSuite (.init, .fini,
 * .timeout, .disabled, .description), cr_assert*, cr_expect* of the eq/ne/
 * lt/le/gt/ge, str_eq/neq/empty, null/not_null kinds and cr_assert_fail.
 * Each test runs in its own process like criterion's; the runner prints
 * criterion's Synthesis line so tests/run-criterion.sh can judge the run.
 */
#ifndef SP_TSAN_CRITERION_H
#define SP_TSAN_CRITERION_H

#include <stddef.h>
#include <string.h>

struct cri_cfg {
	int	  dummy;
	void	(*init)(void);
	void	(*fini)(void);
	double	  timeout;
	int	  disabled;
	const char *description;
};

void	cri_register_test(const char *, const char *, void (*)(void), const struct cri_cfg *);
void	cri_register_suite(const char *, const struct cri_cfg *);
void	cri_report(int, int, const char *, int, const char *, const char *, ...);

#define CRI_CAT_(a, b) a##b
#define CRI_CAT(a, b) CRI_CAT_(a, b)

#define Test(suite, name, ...)						\
	static void cri_fn_##suite##_##name(void);			\
	static const struct cri_cfg cri_cfg_##suite##_##name = {	\
		.dummy = 0, ##__VA_ARGS__ };				\
	__attribute__((constructor)) static void			\
	cri_reg_##suite##_##name(void)					\
	{								\
		cri_register_test(#suite, #name,			\
		    cri_fn_##suite##_##name, &cri_cfg_##suite##_##name); \
	}								\
	static void cri_fn_##suite##_##name(void)

#define TestSuite(suite, ...)						\
	static const struct cri_cfg cri_suite_##suite = {		\
		.dummy = 0, ##__VA_ARGS__ };				\
	__attribute__((constructor)) static void			\
	cri_reg_suite_##suite(void)					\
	{								\
		cri_register_suite(#suite, &cri_suite_##suite);		\
	}

/* The message arguments are optional: "" closes the list either way. */
#define CRI_CHECK(fatal, ok, what, ...)					\
	cri_report(!!(ok), fatal, __FILE__, __LINE__, what, "" __VA_ARGS__)

#define CRI_1(f, c, ...)	CRI_CHECK(f, (c), #c, ##__VA_ARGS__)
#define CRI_OP(f, op, a, b, ...) CRI_CHECK(f, (a) op (b), #a " " #op " " #b, ##__VA_ARGS__)
#define CRI_STR(f, op, a, b, ...) \
	CRI_CHECK(f, strcmp((a), (b)) op 0, #a " " #op " " #b, ##__VA_ARGS__)

#define cr_assert(c, ...)		CRI_1(1, c, ##__VA_ARGS__)
#define cr_expect(c, ...)		CRI_1(0, c, ##__VA_ARGS__)
#define cr_assert_fail(...)		CRI_CHECK(1, 0, "cr_assert_fail", ##__VA_ARGS__)
#define cr_assert_eq(a, b, ...)		CRI_OP(1, ==, a, b, ##__VA_ARGS__)
#define cr_assert_neq(a, b, ...)	CRI_OP(1, !=, a, b, ##__VA_ARGS__)
#define cr_assert_lt(a, b, ...)		CRI_OP(1, <, a, b, ##__VA_ARGS__)
#define cr_assert_leq(a, b, ...)	CRI_OP(1, <=, a, b, ##__VA_ARGS__)
#define cr_assert_gt(a, b, ...)		CRI_OP(1, >, a, b, ##__VA_ARGS__)
#define cr_assert_geq(a, b, ...)	CRI_OP(1, >=, a, b, ##__VA_ARGS__)
#define cr_expect_eq(a, b, ...)		CRI_OP(0, ==, a, b, ##__VA_ARGS__)
#define cr_expect_neq(a, b, ...)	CRI_OP(0, !=, a, b, ##__VA_ARGS__)
#define cr_expect_lt(a, b, ...)		CRI_OP(0, <, a, b, ##__VA_ARGS__)
#define cr_expect_leq(a, b, ...)	CRI_OP(0, <=, a, b, ##__VA_ARGS__)
#define cr_expect_gt(a, b, ...)		CRI_OP(0, >, a, b, ##__VA_ARGS__)
#define cr_expect_geq(a, b, ...)	CRI_OP(0, >=, a, b, ##__VA_ARGS__)
#define cr_assert_null(a, ...)		CRI_1(1, (a) == NULL, ##__VA_ARGS__)
#define cr_assert_not_null(a, ...)	CRI_1(1, (a) != NULL, ##__VA_ARGS__)
#define cr_expect_null(a, ...)		CRI_1(0, (a) == NULL, ##__VA_ARGS__)
#define cr_expect_not_null(a, ...)	CRI_1(0, (a) != NULL, ##__VA_ARGS__)
#define cr_assert_str_eq(a, b, ...)	CRI_STR(1, ==, a, b, ##__VA_ARGS__)
#define cr_assert_str_neq(a, b, ...)	CRI_STR(1, !=, a, b, ##__VA_ARGS__)
#define cr_expect_str_eq(a, b, ...)	CRI_STR(0, ==, a, b, ##__VA_ARGS__)
#define cr_expect_str_neq(a, b, ...)	CRI_STR(0, !=, a, b, ##__VA_ARGS__)
#define cr_assert_str_empty(a, ...)	CRI_1(1, (a)[0] == '\0', ##__VA_ARGS__)
#define cr_expect_str_empty(a, ...)	CRI_1(0, (a)[0] == '\0', ##__VA_ARGS__)
#define cr_assert_str_not_empty(a, ...)	CRI_1(1, (a)[0] != '\0', ##__VA_ARGS__)
#define cr_expect_str_not_empty(a, ...)	CRI_1(0, (a)[0] != '\0', ##__VA_ARGS__)

#endif
