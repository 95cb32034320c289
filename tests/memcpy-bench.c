// SPDX-License-Identifier: GPL-2.0
/*
 * memcpy-bench BYTES: the time this machine takes to memcpy BYTES once
 * (best of 5, buffers touched first), printed as "memcpy_us: N". The demo
 * compares gmig's device downtime against it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
	size_t len = argc > 1 ? strtoull(argv[1], NULL, 0) : 0;
	double best = -1;
	char *a, *b;
	int i;

	if (!len) {
		fprintf(stderr, "usage: memcpy-bench BYTES\n");
		return 2;
	}
	a = malloc(len);
	b = malloc(len);
	if (!a || !b)
		return 1;
	memset(a, 0x5a, len);
	memset(b, 0, len);
	for (i = 0; i < 5; i++) {
		double t = now_us();

		memcpy(b, a, len);
		t = now_us() - t;
		if (best < 0 || t < best)
			best = t;
		a[i] = b[len - 1 - i];	/* keep the copies observable */
	}
	printf("memcpy_us: %.0f\n", best);
	return b[0] == 0;
}
