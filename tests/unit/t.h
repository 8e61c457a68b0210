/*
 * t.h — the smallest unit-test harness that does the job.
 *
 * A test file defines functions with TEST(name) { ... } and lists them in main with
 * RUN(name). CHECK(cond) records a failure (with file:line and the expression) and lets
 * the test go on; the test fails if any CHECK failed. Each test prints one line,
 * "ok <file> <name>" or "FAIL <file> <name>", which tests/run.py counts; main returns
 * non-zero when anything failed. A test that cannot run prints "FAIL <file> <name> — why"
 * (a missing tool is a failure); the one legitimate skip is "skip <file> <name> — not root:
 * what needs root", which tests/run.py accepts only in a run that is not as root.
 */
#ifndef IMSD_T_H
#define IMSD_T_H

#include <stdio.h>
#include <string.h>

static int t_failed_checks;
static int t_tests_failed;

#define TEST(name) static void name(void)

#define CHECK(cond) do { \
	if (!(cond)) { \
		t_failed_checks++; \
		fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
	} \
} while (0)

#define CHECK_STR(a, b) do { \
	const char *t_a_ = (a), *t_b_ = (b); \
	if (t_a_ == NULL || t_b_ == NULL || strcmp(t_a_, t_b_) != 0) { \
		t_failed_checks++; \
		fprintf(stderr, "  %s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
		    t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)"); \
	} \
} while (0)

#define RUN(name) do { \
	int t_before_ = t_failed_checks; \
	name(); \
	if (t_failed_checks != t_before_) { \
		t_tests_failed++; \
		printf("FAIL %s %s\n", __FILE__, #name); \
	} else \
		printf("ok %s %s\n", __FILE__, #name); \
	fflush(stdout); \
} while (0)

#define T_EXIT() return t_tests_failed ? 1 : 0

#endif
