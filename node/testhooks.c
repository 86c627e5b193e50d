/*
 * testhooks.c: SOTTO_TEST_* parsing and the kill switch.
 *
 * One process-wide instance: the hooks are hit from the event loop and
 * from the training thread (apply, checkpoint), so the coin is guarded by
 * a mutex. The checkpoint hook is installed into util/file.c, which calls
 * it between writing a temporary file and renaming it.
 */
#include "node/testhooks.h"

#include "node/transport.h"
#include "protocol/codec.h"
#include "util/bytes.h"
#include "util/file.h"
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const phase_names[TEST_PHASE_COUNT] = {
        "invited", "keys",  "shares",     "masked", "unmask",    "initiated", "collect",
        "result",  "apply", "checkpoint", "split",  "splitting", "parts",     "partsum",
};

static struct {
	bool any;
	bool verify;
	bool silent;
	bool close_hang;
	bool kill[TEST_PHASE_COUNT];
	double kill_prob;
	bool fault_set;
	struct transport_fault fault;
	struct rng rng;
	pthread_mutex_t lock;
} th = {.kill_prob = 1.0, .lock = PTHREAD_MUTEX_INITIALIZER};

/* Only the model's checkpoint, not the replay state or verify records. */
static void checkpoint_hook(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (strcmp(slash != NULL ? slash + 1 : path, "checkpoint") == 0)
		testhook(TEST_PHASE_CHECKPOINT);
}

static int parse_fault(const char *s)
{
	char buf[256], *save = NULL, *tok;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, strlen(s) + 1);
	th.fault.delay_max_s = 0.5;
	th.fault.budget = UINT64_MAX;
	for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		double v;
		if (eq == NULL)
			return -EINVAL;
		*eq = '\0';
		if (util_parse_double(&v, eq + 1, 0, 1e18) != 0)
			return -EINVAL;
		if (strcmp(tok, "drop") == 0 && v <= 1)
			th.fault.drop = v;
		else if (strcmp(tok, "dup") == 0 && v <= 1)
			th.fault.dup = v;
		else if (strcmp(tok, "delay") == 0 && v <= 1)
			th.fault.delay = v;
		else if (strcmp(tok, "delay_max") == 0 && v <= 60)
			th.fault.delay_max_s = v;
		else if (strcmp(tok, "budget") == 0)
			th.fault.budget = (uint64_t)v;
		else
			return -EINVAL;
	}
	th.fault_set = true;
	return 0;
}

int testhooks_init(void)
{
	const char *v;
	uint64_t seed = 1;

	if ((v = getenv("SOTTO_TEST_SEED")) != NULL) {
		int64_t s;
		if (util_parse_i64(&s, v, 0, INT64_MAX) != 0) {
			fprintf(stderr, "sotto run: bad SOTTO_TEST_SEED '%s'\n", v);
			return -EINVAL;
		}
		seed = (uint64_t)s;
	} else {
		seed = (uint64_t)getpid();
	}
	rng_seed(&th.rng, seed);
	th.fault.seed = seed ^ 0x9e3779b97f4a7c15ull;
	if ((v = getenv("SOTTO_TEST_VERIFY")) != NULL && strcmp(v, "1") == 0)
		th.verify = th.any = true;
	if ((v = getenv("SOTTO_TEST_SILENT_AFTER")) != NULL) {
		if (strcmp(v, "accept") != 0) {
			fprintf(stderr, "sotto run: SOTTO_TEST_SILENT_AFTER must be 'accept'\n");
			return -EINVAL;
		}
		th.silent = th.any = true;
	}
	if ((v = getenv("SOTTO_TEST_CLOSE_HANG")) != NULL) {
		if (strcmp(v, "1") != 0) {
			fprintf(stderr, "sotto run: SOTTO_TEST_CLOSE_HANG must be '1'\n");
			return -EINVAL;
		}
		th.close_hang = th.any = true;
	}
	if ((v = getenv("SOTTO_TEST_KILL_PROB")) != NULL &&
	    util_parse_double(&th.kill_prob, v, 0, 1) != 0) {
		fprintf(stderr, "sotto run: SOTTO_TEST_KILL_PROB must be in [0, 1]\n");
		return -EINVAL;
	}
	if ((v = getenv("SOTTO_TEST_KILL_AT")) != NULL && v[0] != '\0') {
		char buf[256], *save = NULL, *tok;
		if (strlen(v) >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, v, strlen(v) + 1);
		for (tok = strtok_r(buf, ",", &save); tok != NULL;
		     tok = strtok_r(NULL, ",", &save)) {
			int found = -1;
			for (int i = 0; i < TEST_PHASE_COUNT; i++) {
				if (strcmp(tok, phase_names[i]) == 0)
					found = i;
			}
			if (found < 0) {
				fprintf(stderr,
				        "sotto run: SOTTO_TEST_KILL_AT: unknown phase '%s'\n", tok);
				return -EINVAL;
			}
			th.kill[found] = th.any = true;
		}
		if (th.kill[TEST_PHASE_CHECKPOINT])
			file_test_hook = checkpoint_hook;
	}
	if ((v = getenv("SOTTO_TEST_FAULT")) != NULL && v[0] != '\0') {
		if (parse_fault(v) != 0) {
			fprintf(stderr,
			        "sotto run: bad SOTTO_TEST_FAULT '%s' (see docs/testing.md)\n", v);
			return -EINVAL;
		}
		th.any = true;
	}
	return 0;
}

void testhooks_log(void)
{
	char kills[160] = "";
	size_t o = 0;

	if (!th.any)
		return;
	for (int i = 0; i < TEST_PHASE_COUNT; i++) {
		if (th.kill[i] && o < sizeof(kills)) {
			int w = snprintf(kills + o, sizeof(kills) - o, "%s%s", o ? "," : "",
			                 phase_names[i]);
			if (w > 0)
				o += (size_t)w;
		}
	}
	log_warnx("TEST MODE (never in production): verify=%d silent=%d kill_at=%s p=%.2f "
	          "fault=%s close_hang=%d",
	          th.verify, th.silent, o ? kills : "-", th.kill_prob, th.fault_set ? "on" : "off",
	          th.close_hang);
}

void testhook(enum test_phase phase)
{
	bool die;

	if (!th.kill[phase])
		return;
	pthread_mutex_lock(&th.lock);
	die = rng_uniform(&th.rng) < th.kill_prob;
	pthread_mutex_unlock(&th.lock);
	if (!die)
		return;
	fprintf(stderr, "TEST: SIGKILL at %s\n", phase_names[phase]);
	fflush(stderr);
	raise(SIGKILL);
}

bool testhooks_verify(void)
{
	return th.verify;
}

bool testhooks_silent_after_accept(void)
{
	return th.silent;
}

void testhook_close_hang(void)
{
	if (!th.close_hang)
		return;
	fprintf(stderr, "TEST: hanging while the sockets close\n");
	for (;;)
		pause();
}

bool testhooks_fault(struct transport_fault *out)
{
	if (th.fault_set)
		*out = th.fault;
	return th.fault_set;
}

/* --- verification records -------------------------------------------------- */

static char verify_dir[1100];

static void hex(char *out, const uint8_t *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static void record(const char *name, const void *buf, size_t len)
{
	char path[1200];

	if (verify_dir[0] == '\0')
		return;
	snprintf(path, sizeof(path), "%s/%s", verify_dir, name);
	if (file_write_atomic(path, buf, len, 0600) != 0)
		log_warn("verify: cannot write %s", path);
}

int testhooks_verify_start(const char *data_dir, const uint8_t pk[32])
{
	char line[80];
	int rc;

	if (snprintf(verify_dir, sizeof(verify_dir), "%s/verify", data_dir) >=
	    (int)sizeof(verify_dir))
		return -ENAMETOOLONG;
	rc = file_mkdirs(verify_dir);
	if (rc != 0)
		return rc;
	hex(line, pk, 32);
	line[64] = '\n';
	record("self", line, 65);
	return 0;
}

/* Ring vectors are stored little-endian whatever the host. */
static void record_ring(const char *name, const struct codec_params *cp, const uint32_t *ring)
{
	size_t n = codec_ring_len(cp);
	uint8_t *buf = malloc(n * 4);

	if (buf == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		bytes_put_le32(buf + 4 * i, ring[i]);
	record(name, buf, n * 4);
	free(buf);
}

void testhooks_record_input(uint64_t rid, uint32_t attempt, const struct codec_params *cp,
                            const uint32_t *ring)
{
	char name[64], *layout;
	size_t nseg = codec_ring_nseg(cp), o = 0, cap = nseg * 24 + 1;

	snprintf(name, sizeof(name), "in-%016llx-%u.u32", (unsigned long long)rid, attempt);
	record_ring(name, cp, ring);
	layout = malloc(cap);
	if (layout == NULL)
		return;
	for (size_t i = 0; i < nseg; i++) {
		uint32_t len, width;
		codec_ring_segment(cp, i, &len, &width);
		o += (size_t)snprintf(layout + o, cap - o, "%u %u\n", len, width);
	}
	snprintf(name, sizeof(name), "layout-%016llx-%u", (unsigned long long)rid, attempt);
	record(name, layout, o);
	free(layout);
}

void testhooks_record_applied(uint64_t rid, uint32_t attempt, const struct codec_params *cp,
                              const uint32_t *sum, const uint8_t (*counted)[32], size_t n)
{
	char name[64], *text;
	size_t o = 0, cap = 16 + n * 66;

	snprintf(name, sizeof(name), "sum-%016llx-%u.u32", (unsigned long long)rid, attempt);
	record_ring(name, cp, sum);
	text = malloc(cap);
	if (text == NULL)
		return;
	o += (size_t)snprintf(text, cap, "counted");
	for (size_t i = 0; i < n; i++) {
		text[o++] = ' ';
		hex(text + o, counted[i], 32);
		o += 64;
	}
	o += (size_t)snprintf(text + o, cap - o, "\n");
	snprintf(name, sizeof(name), "applied-%016llx-%u", (unsigned long long)rid, attempt);
	record(name, text, o);
	free(text);
}

void testhooks_record_outcome(uint64_t rid, uint32_t attempt, const char *outcome)
{
	char name[64], line[96];
	int n;

	snprintf(name, sizeof(name), "outcome-%016llx-%u", (unsigned long long)rid, attempt);
	n = snprintf(line, sizeof(line), "%s\n", outcome);
	record(name, line, (size_t)MIN((size_t)n, sizeof(line) - 1));
}
