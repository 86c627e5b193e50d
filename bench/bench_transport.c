/*
 * bench_transport.c: what the secure transport costs. Prints figures;
 * asserts nothing (timing never decides a test).
 *
 *  1. seal_frame + seal_open (header, counters, replay window, in-place
 *     XChaCha20-Poly1305) against libsodium's raw XChaCha20-Poly1305 IETF
 *     encrypt + decrypt of the same bytes, for 1 KiB .. 16 MiB bodies.
 *  2. msg_encode / msg_decode of a MASKED carrying 1M float32 values as
 *     bytes, against the naive msgpack array of 1M float32 (msgpack-c).
 *  3. 10 MB MASKED messages through the real transport (NNG over ipc://
 *     and tcp:// loopback, one libev loop, both ends in this process), and
 *     the longest stall of a 1 ms timer on that loop meanwhile.
 *
 *   build/bench/bench_transport          # all of it
 *   build/bench/bench_transport quick    # smaller repetitions
 */
#include "crypto/identity.h"
#include "crypto/seal.h"
#include "node/transport.h"
#include "protocol/msg.h"
#include "util/log.h"
#include "util/util.h"

#include <ev.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void check(int rc, const char *what)
{
	if (rc != 0) {
		fprintf(stderr, "bench_transport: %s failed: %d\n", what, rc);
		exit(1);
	}
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (p == NULL) {
		fprintf(stderr, "bench_transport: out of memory\n");
		exit(1);
	}
	return p;
}

static struct identity *ident(uint8_t base)
{
	uint8_t seed[32];
	struct identity *id;
	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)(base + i);
	id = identity_from_seed(seed);
	if (id == NULL)
		exit(1);
	return id;
}

/* Repetitions so each trial moves about `target` bytes (at least 3). */
static int reps_for(size_t n, double target)
{
	double r = target / (double)n;
	return r < 3 ? 3 : (int)r;
}

#define TRIALS 7 /* interleaved; the best of each is kept (a shared, loaded box) */

/* --- 1. sealing ------------------------------------------------------------- */

static void bench_seal(double target)
{
	const size_t sizes[] = {1024, 64 * 1024, 1u << 20, 16u << 20};
	struct identity *a = ident(0), *b = ident(32);
	struct seal_ctx *ca, *cb;
	uint8_t key[32], nonce[24], ad[SEAL_HEADER_BYTES], tag[16];

	check(seal_ctx_alloc(&ca, a, NULL), "seal_ctx_alloc");
	check(seal_ctx_alloc(&cb, b, NULL), "seal_ctx_alloc");
	check(seal_peer_add(ca, b->sign_pk), "peer");
	check(seal_peer_add(cb, a->sign_pk), "peer");
	randombytes_buf(key, sizeof(key));
	randombytes_buf(nonce, sizeof(nonce));
	randombytes_buf(ad, sizeof(ad));
	printf("== seal + open vs raw XChaCha20-Poly1305 (MB/s of body, one core, best of %d)\n",
	       TRIALS);
	printf("%10s %10s %10s %10s %10s %10s %10s  %s\n", "body", "seal", "open", "seal+open",
	       "raw enc", "raw dec", "raw e+d", "ratio (seal+open / raw e+d)");
	for (size_t s = 0; s < ARRAY_LEN(sizes); s++) {
		size_t n = sizes[s], len = n + SEAL_OVERHEAD;
		uint8_t *f = xmalloc(len), *m = xmalloc(n);
		int reps = reps_for(n, target / TRIALS);
		double best[4] = {1e9, 1e9, 1e9, 1e9}; /* seal, seal+open, enc, enc+dec */
		struct seal_header h;
		memset(f, 0x5a, len);
		memset(m, 0x5a, n);
		for (int tr = 0; tr < TRIALS; tr++) {
			double t[5];
			t[0] = util_now();
			for (int r = 0; r < reps; r++)
				check(seal_frame(ca, f, len, b->sign_pk, 6, 1), "seal");
			t[1] = util_now();
			for (int r = 0; r < reps; r++) {
				check(seal_frame(ca, f, len, b->sign_pk, 6, 1), "seal");
				check(seal_open(cb, &h, f, len), "open");
			}
			t[2] = util_now();
			for (int r = 0; r < reps; r++)
				crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
				        m, tag, NULL, m, n, ad, sizeof(ad), NULL, nonce, key);
			t[3] = util_now();
			for (int r = 0; r < reps; r++) {
				crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
				        m, tag, NULL, m, n, ad, sizeof(ad), NULL, nonce, key);
				check(crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
				              m, NULL, m, n, tag, ad, sizeof(ad), nonce, key),
				      "raw decrypt");
			}
			t[4] = util_now();
			for (int k = 0; k < 4; k++)
				best[k] = MIN(best[k], t[k + 1] - t[k]);
		}
		{
			double mb = (double)n * reps / 1e6;
			/* open alone = best pair - best seal (an estimate) */
			printf("%9zuK %10.0f %10.0f %10.0f %10.0f %10.0f %10.0f  %.3f\n", n / 1024,
			       mb / best[0], mb / (best[1] - best[0]), mb / best[1], mb / best[2],
			       mb / (best[3] - best[2]), mb / best[3], best[3] / best[1]);
		}
		free(f);
		free(m);
	}
	seal_ctx_free(ca);
	seal_ctx_free(cb);
	identity_free(a);
	identity_free(b);
}

/* --- 2. encoding ------------------------------------------------------------ */

static void bench_codec(int reps)
{
	const size_t nf = 1000000;
	float *x = xmalloc(nf * sizeof(float));
	struct msg m = {.type = MSG_MASKED, .round_id = 7};
	static struct msg d;
	size_t cap, len = 0;
	uint8_t *buf;
	double t0, t_enc, t_dec, t_nenc, t_ndec, mb = (double)nf * 4 / 1e6;
	msgpack_sbuffer sb;
	msgpack_packer pk;

	for (size_t i = 0; i < nf; i++)
		x[i] = (float)i * 1e-3f;
	m.u.masked.n_values = (uint32_t)nf;
	m.u.masked.weight = 1;
	m.u.masked.vector = (struct msg_bytes){(const uint8_t *)x, nf * sizeof(float)};
	cap = msg_encoded_size(&m);
	buf = xmalloc(cap);

	t_enc = t_dec = 1e9;
	for (int r = 0; r < reps; r++) { /* best single run of each */
		t0 = util_now();
		check(msg_encode(buf, cap, &len, &m), "msg_encode");
		t_enc = MIN(t_enc, util_now() - t0);
		t0 = util_now();
		check(msg_decode(&d, buf, len), "msg_decode");
		t_dec = MIN(t_dec, util_now() - t0);
	}

	/* The naive alternative: an array of 1M msgpack float32 values. */
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	t_nenc = t_ndec = 1e9;
	for (int r = 0; r < reps; r++) {
		t0 = util_now();
		msgpack_sbuffer_clear(&sb);
		msgpack_pack_array(&pk, nf);
		for (size_t i = 0; i < nf; i++)
			msgpack_pack_float(&pk, x[i]);
		t_nenc = MIN(t_nenc, util_now() - t0);
	}
	for (int r = 0; r < reps; r++) {
		msgpack_unpacked up;
		size_t off = 0;
		float acc = 0;
		t0 = util_now();
		msgpack_unpacked_init(&up);
		if (msgpack_unpack_next(&up, sb.data, sb.size, &off) != MSGPACK_UNPACK_SUCCESS)
			exit(1);
		for (size_t i = 0; i < nf; i++)
			acc += (float)up.data.via.array.ptr[i].via.f64;
		msgpack_unpacked_destroy(&up);
		t_ndec = MIN(t_ndec, util_now() - t0);
		if (acc < 0)
			printf("?");
	}
	printf("\n== 1M float32 values in one message (MB/s of the 4 MB of values)\n");
	printf("MASKED (bytes)         encode %8.0f MB/s (%.2f ms)  decode %10.0f MB/s (%.3f ms, "
	       "zero-copy)  %zu bytes\n",
	       mb / t_enc, t_enc * 1e3, mb / t_dec, t_dec * 1e3, len);
	printf("msgpack float32 array  encode %8.0f MB/s (%.2f ms)  decode %10.0f MB/s (%.3f ms)  "
	       "%zu bytes\n",
	       mb / t_nenc, t_nenc * 1e3, mb / t_ndec, t_ndec * 1e3, sb.size);
	msgpack_sbuffer_destroy(&sb);
	free(buf);
	free(x);
}

/* --- 3. through NNG --------------------------------------------------------- */

static struct {
	int received;
	double last_tick, max_gap;
} rx;

static void on_rx(void *arg, const struct transport_rx *r)
{
	(void)arg;
	if (r->msg->type == MSG_MASKED)
		rx.received++;
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	double now = util_now();
	(void)loop;
	(void)w;
	(void)revents;
	if (rx.last_tick > 0 && now - rx.last_tick > rx.max_gap)
		rx.max_gap = now - rx.last_tick;
	rx.last_tick = now;
}

static int want;
static void done_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	if (rx.received >= want)
		ev_break(loop, EVBREAK_ALL);
}

static void bench_wire(const char *url_a, const char *url_b, int count)
{
	const size_t n = 10u * 1000 * 1000;
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct identity *a = ident(0), *b = ident(32);
	struct seal_ctx *sa, *sb;
	struct transport *ta, *tb;
	struct transport_options oa = {.listen_url = url_a}, ob = {.listen_url = url_b};
	struct msg m = {.type = MSG_MASKED, .round_id = 9};
	uint8_t *v = xmalloc(n);
	ev_timer tick, done;
	double t0, t;

	randombytes_buf(v, n);
	check(seal_ctx_alloc(&sa, a, NULL), "seal");
	check(seal_ctx_alloc(&sb, b, NULL), "seal");
	check(transport_alloc(&ta, loop, sa, &oa, on_rx, NULL), "transport");
	check(transport_alloc(&tb, loop, sb, &ob, on_rx, NULL), "transport");
	check(transport_peer_add(ta, b->sign_pk, url_b, "b"), "peer");
	check(transport_peer_add(tb, a->sign_pk, url_a, "a"), "peer");
	check(transport_start(ta), "start");
	check(transport_start(tb), "start");
	m.u.masked.n_values = (uint32_t)(n / 4);
	m.u.masked.weight = 1;
	m.u.masked.vector = (struct msg_bytes){v, n};
	/* One message first so the connection exists before timing. */
	memset(&rx, 0, sizeof(rx));
	want = 1;
	check(transport_send(ta, b->sign_pk, &m), "send");
	ev_timer_init(&done, done_cb, 0.001, 0.001);
	ev_timer_start(loop, &done);
	ev_run(loop, 0);

	memset(&rx, 0, sizeof(rx));
	want = count;
	ev_timer_init(&tick, tick_cb, 0.001, 0.001);
	ev_timer_start(loop, &tick);
	t0 = util_now();
	for (int i = 0; i < count; i++)
		check(transport_send(ta, b->sign_pk, &m), "send");
	ev_run(loop, 0);
	t = util_now() - t0;
	printf("%-28s %d x 10 MB in %.3f s: %6.0f MB/s; longest 1 ms-timer stall %.1f ms\n", url_a,
	       count, t, (double)n * count / 1e6 / t, rx.max_gap * 1e3);
	ev_timer_stop(loop, &tick);
	ev_timer_stop(loop, &done);
	transport_free(ta);
	transport_free(tb);
	seal_ctx_free(sa);
	seal_ctx_free(sb);
	identity_free(a);
	identity_free(b);
	ev_loop_destroy(loop);
	free(v);
}

int main(int argc, char **argv)
{
	bool quick = argc > 1 && strcmp(argv[1], "quick") == 0;
	char dir[] = "/tmp/sotto-bench-XXXXXX", ua[96], ub[96];
	int port = 21000 + (int)(getpid() % 5000) * 2;

	log_set_level(LOG_LEVEL_ERROR);
	if (sodium_init() < 0)
		return 1;
	bench_seal(quick ? 64e6 : 512e6);
	bench_codec(quick ? 5 : 30);
	printf("\n== 10 MB MASKED messages through the transport (both ends on one loop)\n");
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(ua, sizeof(ua), "ipc://%s/a", dir);
	snprintf(ub, sizeof(ub), "ipc://%s/b", dir);
	bench_wire(ua, ub, quick ? 3 : 10);
	snprintf(ua, sizeof(ua), "tcp://127.0.0.1:%d", port);
	snprintf(ub, sizeof(ub), "tcp://127.0.0.1:%d", port + 1);
	bench_wire(ua, ub, quick ? 3 : 10);
	snprintf(ua, sizeof(ua), "%s/a", dir);
	snprintf(ub, sizeof(ub), "%s/b", dir);
	unlink(ua);
	unlink(ub);
	rmdir(dir);
	return 0;
}
