/*
 * space-wc, in C: counts the words of a value in a space, as wc -w does.
 * Its input is "OWNER/SPACE KEY"; its output the number of runs of
 * non-whitespace in that key's value, and a newline. It streams the value
 * 64 KiB at a time. Errors go to stderr, with exit status 1.
 *
 *     clang --target=wasm32-wasi -O2 -o space-wc.wasm main.c
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nube_v1.h"

static uint8_t buf[64 << 10];

static char *space, *key;

/* fail writes the host's message for the error code op returned, and
 * exits 1. */
static void fail(const char *op, long long code) {
	static uint8_t msg[1024];
	int32_t n = nube_error_message(msg, sizeof msg);
	if (n < 0)
		n = 0;
	if ((uint32_t)n > sizeof msg)
		n = sizeof msg;
	fprintf(stderr, "space-wc: %s %s: %s: %.*s (code %lld)\n", space, key, op, (int)n, (const char *)msg, code);
	exit(1);
}

int main(void) {
	static char in[4096];
	size_t len = fread(in, 1, sizeof in - 1, stdin);
	in[len] = 0;

	space = strtok(in, " \t\r\n\v\f");
	key = strtok(NULL, " \t\r\n\v\f");
	if (space == NULL || key == NULL || strtok(NULL, " \t\r\n\v\f") != NULL) {
		fprintf(stderr, "space-wc: want OWNER/SPACE KEY on stdin\n");
		return 1;
	}

	int64_t h = nube_space_get((const uint8_t *)space, strlen(space), (const uint8_t *)key, strlen(key));
	if (h < 0)
		fail("space_get", h);

	long long words = 0;
	int in_word = 0;
	for (;;) {
		int64_t n = nube_read((int32_t)h, buf, sizeof buf);
		if (n < 0)
			fail("read", n);
		if (n == 0)
			break;
		for (int64_t i = 0; i < n; i++) {
			if (isspace(buf[i])) {
				in_word = 0;
			} else if (!in_word) {
				in_word = 1;
				words++;
			}
		}
	}
	nube_close((int32_t)h);
	printf("%lld\n", words);
	return 0;
}
