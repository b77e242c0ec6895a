/*
 * A minimal TAP producer for the C unit tests: ok(), is_int(), is_str()
 * and done_testing(), read by automake's tap-driver.sh.
 */
#ifndef CLUSTERD_TAP_H
#define CLUSTERD_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_n, tap_failed;

static __attribute__((unused)) int
tap_ok(int cond, const char *name)
{
	tap_n++;
	printf("%sok %d - %s\n", cond ? "" : "not ", tap_n, name);
	if (!cond)
		tap_failed++;
	return cond;
}

#define ok(cond, name) tap_ok((cond), (name))

static __attribute__((unused)) int
is_int(long long got, long long want, const char *name)
{
	if (!tap_ok(got == want, name))
		printf("#   got %lld, expected %lld\n", got, want);
	return got == want;
}

static __attribute__((unused)) int
is_str(const char *got, const char *want, const char *name)
{
	int same = got != NULL && want != NULL && strcmp(got, want) == 0;

	if (!tap_ok(same, name))
		printf("#   got \"%s\"\n#   expected \"%s\"\n", got ? got : "(null)",
		    want ? want : "(null)");
	return same;
}

/* err contains want */
static __attribute__((unused)) int
like(const char *got, const char *want, const char *name)
{
	int found = got != NULL && strstr(got, want) != NULL;

	if (!tap_ok(found, name))
		printf("#   \"%s\"\n#   does not contain \"%s\"\n", got ? got : "(null)", want);
	return found;
}

static __attribute__((unused)) int
done_testing(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
