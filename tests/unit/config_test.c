/*
 * config_test.c: one case per class of configuration error, each asserting
 * the exact line reported; the documented examples parse; every key of the
 * key table is documented in docs/sotto.conf.md.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config/config.h"
#include "crypto/identity.h"
#include "node/cli.h"
#include "util/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Two valid peer keys, fixed so that line numbers below are stable. */
static char peer_key[3][IDENTITY_B64_BYTES];
static char own_pub[IDENTITY_B64_BYTES];
static char tmpdir[256];

static void write_file(const char *name, const char *text, mode_t mode)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	assert_int_equal(file_write_atomic(path, text, strlen(text), mode), 0);
}

static int setup(void **state)
{
	struct identity *id;
	char line[IDENTITY_B64_BYTES + 1];

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sotto-config-test-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	for (int i = 0; i < 3; i++) {
		uint8_t seed[32];
		memset(seed, 0x11 * (i + 1), sizeof(seed));
		id = identity_from_seed(seed);
		if (id == NULL)
			return -1;
		identity_public_encode(peer_key[i], id->sign_pk);
		identity_free(id);
	}
	id = identity_generate();
	if (id == NULL)
		return -1;
	identity_encode_private(line, id);
	identity_public_encode(own_pub, id->sign_pk);
	identity_free(id);
	line[44] = '\n';
	line[45] = '\0';
	write_file("site.key", line, 0600);
	write_file("open.key", line, 0644);
	write_file("garbage.key", "not a key\n", 0600);
	write_file("train.dat", "x", 0644);
	return 0;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/*
 * Builds a node config in tmpdir from a body with "%KEYn%" / "%OWN%"
 * placeholders replaced, loads it through node_config_load().
 */
static int load(struct config *cfg, const char *body)
{
	char text[8192], path[512];
	struct identity *id = NULL;
	size_t o = 0;
	int rc;

	for (const char *p = body; *p != '\0' && o + 64 < sizeof(text);) {
		if (strncmp(p, "%KEY", 4) == 0 && p[5] == '%') {
			o += (size_t)snprintf(text + o, sizeof(text) - o, "%s",
			                      peer_key[p[4] - '0']);
			p += 6;
		} else if (strncmp(p, "%OWN%", 5) == 0) {
			o += (size_t)snprintf(text + o, sizeof(text) - o, "%s", own_pub);
			p += 5;
		} else {
			text[o++] = *p++;
		}
	}
	text[o] = '\0';
	write_file("t.conf", text, 0644);
	snprintf(path, sizeof(path), "%s/t.conf", tmpdir);
	rc = node_config_load(cfg, path, &id);
	identity_free(id);
	return rc;
}

/* A valid node config: 3 peers, GroupSize 4. Line numbers matter below. */
#define NODE_HEAD                                                                                  \
	"[Node]\n"                    /* 1 */                                                      \
	"Name = site-a\n"             /* 2 */                                                      \
	"PrivateKeyFile = site.key\n" /* 3 */                                                      \
	"Listen = 127.0.0.1:7000\n"   /* 4 */                                                      \
	"DataDir = state\n"           /* 5 */                                                      \
	"\n"                          /* 6 */                                                      \
	"[Training]\n"                /* 7 */                                                      \
	"Dataset = train.dat\n"       /* 8 */
#define PEERS                                                                                      \
	"[Peer]\nName = b\nPublicKey = %KEY0%\nEndpoint = 127.0.0.1:7001\n"                        \
	"[Peer]\nName = c\nPublicKey = %KEY1%\nEndpoint = 127.0.0.1:7002\n"                        \
	"[Peer]\nName = d\nPublicKey = %KEY2%\nEndpoint = 127.0.0.1:7003\n"

static void expect_error(struct config *cfg, int line, const char *needle)
{
	for (size_t i = 0; i < cfg->n_errors; i++) {
		if (cfg->errors[i].line == line && strstr(cfg->errors[i].msg, needle) != NULL)
			return;
	}
	config_errors_print(cfg, stderr);
	fail_msg("expected an error at line %d containing '%s'", line, needle);
}

static void test_valid(void **state)
{
	struct config cfg;
	(void)state;
	assert_int_equal(load(&cfg, NODE_HEAD PEERS), 0);
	assert_true(cfg.has_node);
	assert_string_equal(cfg.node.name, "site-a");
	assert_string_equal(cfg.node.listen, "tcp://127.0.0.1:7000");
	assert_int_equal(cfg.n_peers, 3);
	assert_string_equal(cfg.peers[2].endpoint, "tcp://127.0.0.1:7003");
	assert_int_equal(cfg.gossip.group_size, 4);
	assert_int_equal(cfg.gossip.threshold, 3); /* max(3, ceil((4 + 2) / 2)) */
	assert_int_equal(cfg.model.type, CONFIG_MODEL_MLP);
	assert_int_equal(cfg.model.n_hidden, 1);
	assert_int_equal(cfg.model.hidden[0], 128);
	assert_int_equal(cfg.training.batch_size, 32);
	assert_non_null(strstr(cfg.node.control_socket, "state/control.sock"));
	config_fini(&cfg);
}

/* What a reload may change: peers and the live keys; anything else is named. */
static void test_reload_diff(void **state)
{
	struct config a, b;
	char buf[256];
	(void)state;
	assert_int_equal(load(&a, NODE_HEAD PEERS), 0);
	/* Lines move, peers go and come, live keys change: nothing refused. */
	assert_int_equal(load(&b,
	                      "\n\n[Node]\nLogLevel = debug\nName = site-a\n"
	                      "PrivateKeyFile = site.key\nListen = 127.0.0.1:7000\n"
	                      "DataDir = state\n[Training]\nDataset = train.dat\n"
	                      "[Gossip]\nInterval = 3\nRoundTimeout = 9\nEvalEvery = 2\n"
	                      "Rounds = 7\n"
	                      "[Peer]\nName = c2\nPublicKey = %KEY1%\nEndpoint = 127.0.0.1:7102\n"
	                      "[Peer]\nName = d\nPublicKey = %KEY2%\nEndpoint = 127.0.0.1:7103\n"
	                      "[Peer]\nName = b\nPublicKey = %KEY0%\nEndpoint = 127.0.0.1:7001\n"),
	                 0);
	assert_int_equal(config_reload_diff(&a, &b, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	config_fini(&b);
	/* Listen, the model and a codec key: each named, in table order. */
	assert_int_equal(load(&b, "[Node]\nName = site-a\nPrivateKeyFile = site.key\n"
	                          "Listen = 127.0.0.1:7009\nDataDir = state\n[Training]\n"
	                          "Dataset = train.dat\n[Model]\nHidden = 128,64\n"
	                          "[Gossip]\nWidth = 8\n" PEERS),
	                 0);
	assert_int_equal(config_reload_diff(&a, &b, buf, sizeof(buf)), 3);
	assert_string_equal(buf, "[Node] Listen, [Model] Hidden, [Gossip] Width");
	/* Truncated to the buffer, counted in full. */
	assert_int_equal(config_reload_diff(&a, &b, buf, 10), 3);
	assert_int_equal(strlen(buf), 9);
	config_fini(&b);
	assert_true(config_key_reloads("Peer", "Endpoint"));
	assert_true(config_key_reloads("Gossip", "Interval"));
	assert_false(config_key_reloads("Gossip", "GroupSize"));
	assert_false(config_key_reloads("Node", "Listen"));
	config_fini(&a);
}

static void test_unknown_section(void **state)
{
	struct config cfg;
	(void)state;
	assert_int_equal(load(&cfg, NODE_HEAD PEERS "[Bogus]\nX = 1\n"), -EINVAL);
	expect_error(&cfg, 21, "unknown section");
	assert_int_equal(cfg.n_errors, 1); /* keys inside are not reported again */
	config_fini(&cfg);
}

static void test_unknown_key(void **state)
{
	struct config cfg;
	(void)state;
	assert_int_equal(load(&cfg, NODE_HEAD "Colour = blue\n" PEERS), -EINVAL);
	expect_error(&cfg, 9, "unknown key");
	assert_string_equal(cfg.errors[0].value, "Colour");
	config_fini(&cfg);
}

static void test_missing_required(void **state)
{
	struct config cfg;
	(void)state;
	assert_int_equal(load(&cfg, "[Node]\nName = a\nPrivateKeyFile = site.key\nDataDir = s\n"
	                            "[Training]\nDataset = train.dat\n" PEERS),
	                 -EINVAL);
	expect_error(&cfg, 1, "missing required key Listen");
	config_fini(&cfg);
	/* A [Peer] without PublicKey: reported at its header. */
	assert_int_equal(load(&cfg, NODE_HEAD PEERS "[Peer]\nName = e\nEndpoint = h:1\n"), -EINVAL);
	expect_error(&cfg, 21, "missing required key PublicKey");
	config_fini(&cfg);
}

/*
 * [Model] Type = external: no Dataset needed; what the trainer does itself
 * (Dataset, TestSet, Standardize, [Privacy], [Gossip] Rank) is refused.
 */
static void test_external(void **state)
{
	struct config cfg;
	(void)state;
	assert_int_equal(load(&cfg, "[Node]\nName = a\nPrivateKeyFile = site.key\n"
	                            "Listen = 127.0.0.1:7000\nDataDir = s\n"
	                            "[Model]\nType = external\n" PEERS),
	                 0);
	assert_int_equal(cfg.model.type, CONFIG_MODEL_EXTERNAL);
	config_fini(&cfg);
	assert_int_equal(load(&cfg, NODE_HEAD "[Model]\nType = external\n" /* 9, 10 */
	                                      "[Gossip]\nRank = 4\n"       /* 11, 12 */
	                      PEERS),
	                 -EINVAL);
	expect_error(&cfg, 8, "Dataset does not apply to [Model] Type = external");
	expect_error(&cfg, 12, "Rank does not apply");
	config_fini(&cfg);
}

static void test_bad_value(void **state)
{
	struct config cfg;
	(void)state;
	assert_int_equal(load(&cfg, NODE_HEAD "BatchSize = lots\n" PEERS), -EINVAL);
	expect_error(&cfg, 9, "BatchSize must be an integer");
	assert_string_equal(cfg.errors[0].value, "lots");
	config_fini(&cfg);
	assert_int_equal(load(&cfg, NODE_HEAD "Optimizer = rmsprop\n" PEERS), -EINVAL);
	expect_error(&cfg, 9, "must be one of");
	config_fini(&cfg);
	assert_int_equal(load(&cfg, "[Node]\nName = bad name!\nPrivateKeyFile = site.key\n"
	                            "Listen = 127.0.0.1:7000\nDataDir = s\n"
	                            "[Training]\nDataset = train.dat\n" PEERS),
	                 -EINVAL);
	expect_error(&cfg, 2, "Name must be");
	config_fini(&cfg);
	assert_int_equal(load(&cfg, NODE_HEAD PEERS "[Peer]\nName = e\nPublicKey = abc\n"
	                                            "Endpoint = 127.0.0.1:7009\n"),
	                 -EINVAL);
	expect_error(&cfg, 23, "PublicKey must be");
	config_fini(&cfg);
	assert_int_equal(load(&cfg, NODE_HEAD PEERS "[Peer]\nName = e\nPublicKey = %OWN%\n"
	                                            "Endpoint = 0.0.0.0:7009\n"),
	                 -EINVAL);
	expect_error(&cfg, 24, "wildcard");
	config_fini(&cfg);
}

static void test_out_of_range(void **state)
{
	struct config cfg;
	(void)state;
	assert_int_equal(load(&cfg, NODE_HEAD "LearningRate = 11\n" PEERS), -EINVAL);
	expect_error(&cfg, 9, "LearningRate must be a number in 1e-7..10");
	config_fini(&cfg);
	assert_int_equal(load(&cfg, "[Node]\nName = a\nPrivateKeyFile = site.key\n"
	                            "Listen = 127.0.0.1:70000\nDataDir = s\n"
	                            "[Training]\nDataset = train.dat\n" PEERS),
	                 -EINVAL);
	expect_error(&cfg, 4, "port must be 1..65535");
	config_fini(&cfg);
	/* The schedule: a warm-up as long as the budget, a floor of 0, a bad rule. */
	assert_int_equal(load(&cfg, NODE_HEAD "Epochs = 5\nWarmup = 5\n" PEERS), -EINVAL);
	expect_error(&cfg, 10, "Warmup must be less than Epochs (5)");
	config_fini(&cfg);
	assert_int_equal(load(&cfg, NODE_HEAD "LearningRateFloor = 0\n" PEERS), -EINVAL);
	expect_error(&cfg, 9, "LearningRateFloor must be a number in 1e-4..1");
	config_fini(&cfg);
	assert_int_equal(load(&cfg, NODE_HEAD "MomentumRule = average\n" PEERS), -EINVAL);
	expect_error(&cfg, 9, "must be one of");
	config_fini(&cfg);
	assert_int_equal(load(&cfg, NODE_HEAD "Schedule = cosine\nWarmup = 0.5\n"
	                                      "MomentumRule = quasi-global\n" PEERS),
	                 0);
	assert_int_equal(cfg.training.schedule, CONFIG_SCHED_COSINE);
	assert_int_equal(cfg.training.momentum_rule, CONFIG_MOM_QUASI_GLOBAL);
	assert_true(cfg.training.warmup == 0.5 && cfg.training.lr_floor == 0.01);
	config_fini(&cfg);
	/* Drift correction: 0..1, and only with SGD. */
	assert_int_equal(load(&cfg, NODE_HEAD "DriftCorrection = 0.05\n" PEERS), 0);
	assert_true(cfg.training.drift_correction == 0.05);
	config_fini(&cfg);
	assert_int_equal(load(&cfg, NODE_HEAD "DriftCorrection = 2\n" PEERS), -EINVAL);
	expect_error(&cfg, 9, "DriftCorrection must be a number in 0..1");
	config_fini(&cfg);
	assert_int_equal(load(&cfg, NODE_HEAD "Optimizer = adam\nDriftCorrection = 0.1\n" PEERS),
	                 -EINVAL);
	expect_error(&cfg, 10, "DriftCorrection needs Optimizer = sgd");
	config_fini(&cfg);
}

static void test_duplicate_peer_name(void **state)
{
	struct config cfg;
	(void)state;
	assert_int_equal(load(&cfg, NODE_HEAD PEERS "[Peer]\nName = c\nPublicKey = %OWN%\n"
	                                            "Endpoint = 127.0.0.1:7009\n"),
	                 -EINVAL);
	expect_error(&cfg, 22, "duplicate peer name (first at line 14)");
	config_fini(&cfg);
}

static void test_duplicate_peer_key(void **state)
{
	struct config cfg;
	(void)state;
	assert_int_equal(load(&cfg, NODE_HEAD PEERS "[Peer]\nName = e\nPublicKey = %KEY1%\n"
	                                            "Endpoint = 127.0.0.1:7009\n"),
	                 -EINVAL);
	expect_error(&cfg, 23, "duplicate peer PublicKey (first at line 15)");
	config_fini(&cfg);
}

static void test_own_key_as_peer(void **state)
{
	struct config cfg;
	(void)state;
	assert_int_equal(load(&cfg, NODE_HEAD PEERS "[Peer]\nName = e\nPublicKey = %OWN%\n"
	                                            "Endpoint = 127.0.0.1:7009\n"),
	                 -EINVAL);
	expect_error(&cfg, 23, "own public key");
	assert_int_equal(cfg.n_errors, 1);
	config_fini(&cfg);
}

static void test_private_key_file(void **state)
{
	struct config cfg;
	(void)state;
	assert_int_equal(load(&cfg, "[Node]\nName = a\nPrivateKeyFile = missing.key\n"
	                            "Listen = 127.0.0.1:7000\nDataDir = s\n"
	                            "[Training]\nDataset = train.dat\n" PEERS),
	                 -EINVAL);
	expect_error(&cfg, 3, "cannot read PrivateKeyFile");
	config_fini(&cfg);
	assert_int_equal(load(&cfg, "[Node]\nName = a\nPrivateKeyFile = open.key\n"
	                            "Listen = 127.0.0.1:7000\nDataDir = s\n"
	                            "[Training]\nDataset = train.dat\n" PEERS),
	                 -EINVAL);
	expect_error(&cfg, 3, "accessible by group or others");
	config_fini(&cfg);
	assert_int_equal(load(&cfg, "[Node]\nName = a\nPrivateKeyFile = garbage.key\n"
	                            "Listen = 127.0.0.1:7000\nDataDir = s\n"
	                            "[Training]\nDataset = train.dat\n" PEERS),
	                 -EINVAL);
	expect_error(&cfg, 3, "not a sotto private key");
	config_fini(&cfg);
}

static void test_syntax_and_duplicates(void **state)
{
	struct config cfg;
	(void)state;
	assert_int_equal(load(&cfg, NODE_HEAD "just some words\nBatchSize = 8\nBatchSize = 9\n"
	                                      "[Training]\n" PEERS),
	                 -EINVAL);
	expect_error(&cfg, 9, "expected 'Key = Value'");
	expect_error(&cfg, 11, "duplicate key (first at line 10)");
	expect_error(&cfg, 12, "duplicate section (first at line 7)");
	config_fini(&cfg);
	assert_int_equal(load(&cfg, "Name = x\n" NODE_HEAD PEERS), -EINVAL);
	expect_error(&cfg, 1, "outside of any section");
	config_fini(&cfg);
}

static void test_cross_field(void **state)
{
	struct config cfg;
	(void)state;
	assert_int_equal(load(&cfg, NODE_HEAD "[Gossip]\nGroupSize = 5\nThreshold = 2\n" PEERS),
	                 -EINVAL);
	expect_error(&cfg, 11, "Threshold must be in 4..5");
	expect_error(&cfg, 10, "GroupSize 5 needs at least 4 peers");
	config_fini(&cfg);
	assert_int_equal(load(&cfg, NODE_HEAD "[Model]\nType = logreg\nHidden = 64\n" PEERS),
	                 -EINVAL);
	expect_error(&cfg, 11, "Hidden applies only to Type = mlp");
	config_fini(&cfg);
	assert_int_equal(load(&cfg, "[Training]\nDataset = train.dat\n" PEERS), -EINVAL);
	expect_error(&cfg, 3, "[Peer] sections need a [Node] section");
	config_fini(&cfg);
}

static void test_every_error_reported(void **state)
{
	struct config cfg;
	(void)state;
	assert_int_equal(load(&cfg, "[Node]\nName = a\nPrivateKeyFile = open.key\nListen = x\n"
	                            "DataDir = s\nBogus = 1\n[Training]\nDataset = nope.dat\n"
	                            "BatchSize = 0\n" PEERS),
	                 -EINVAL);
	expect_error(&cfg, 3, "accessible by group or others");
	expect_error(&cfg, 4, "missing :port");
	expect_error(&cfg, 6, "unknown key");
	expect_error(&cfg, 8, "cannot read Dataset");
	expect_error(&cfg, 9, "BatchSize must be an integer in 1..65536");
	assert_int_equal(cfg.n_errors, 5);
	config_fini(&cfg);
}

static void test_long_line_and_garbage(void **state)
{
	struct config cfg;
	char big[600];
	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "Name = ", 7);
	assert_int_equal(config_load_string(&cfg, "mem", big), -EINVAL);
	expect_error(&cfg, 1, "line too long");
	config_fini(&cfg);
	assert_int_equal(config_load_string(&cfg, "mem", "[Node\n\x01\x02\xff=\n[[]]\n"), -EINVAL);
	expect_error(&cfg, 1, "missing ']'");
	config_fini(&cfg);
	assert_int_equal(config_load(&cfg, "/nonexistent/sotto.conf"), -ENOENT);
	assert_int_equal(cfg.n_errors, 1);
	config_fini(&cfg);
}

static void test_local_only(void **state)
{
	struct config cfg;
	(void)state;
	assert_int_equal(load(&cfg, "[Model]\nType = cnn\n[Training]\nDataset = train.dat\n"
	                            "Optimizer = adam\nLearningRate = 0.001\n"),
	                 0);
	assert_false(cfg.has_node);
	assert_int_equal(cfg.model.type, CONFIG_MODEL_CNN);
	assert_int_equal(cfg.training.optimizer, CONFIG_OPT_ADAM);
	config_fini(&cfg);
}

/* Every key of the table appears in docs/sotto.conf.md as "`Key`". */
static void test_keys_documented(void **state)
{
	const struct config_key_doc *docs;
	size_t n = config_key_docs(&docs);
	uint8_t *md = NULL;
	size_t len = 0;
	(void)state;
	assert_int_equal(file_read_all(SOTTO_SOURCE_DIR "/docs/sotto.conf.md", 1 << 20, &md, &len),
	                 0);
	for (size_t i = 0; i < n; i++) {
		char needle[64];
		snprintf(needle, sizeof(needle), "`%s`", docs[i].key);
		if (strstr((const char *)md, needle) == NULL)
			fail_msg("docs/sotto.conf.md does not document %s", docs[i].key);
		if (docs[i].def != NULL) {
			snprintf(needle, sizeof(needle), "`%s`", docs[i].def);
			if (strstr((const char *)md, needle) == NULL)
				fail_msg("docs/sotto.conf.md lacks the default %s of %s",
				         docs[i].def, docs[i].key);
		}
	}
	free(md);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_valid),
	        cmocka_unit_test(test_reload_diff),
	        cmocka_unit_test(test_unknown_section),
	        cmocka_unit_test(test_unknown_key),
	        cmocka_unit_test(test_missing_required),
	        cmocka_unit_test(test_external),
	        cmocka_unit_test(test_bad_value),
	        cmocka_unit_test(test_out_of_range),
	        cmocka_unit_test(test_duplicate_peer_name),
	        cmocka_unit_test(test_duplicate_peer_key),
	        cmocka_unit_test(test_own_key_as_peer),
	        cmocka_unit_test(test_private_key_file),
	        cmocka_unit_test(test_syntax_and_duplicates),
	        cmocka_unit_test(test_cross_field),
	        cmocka_unit_test(test_every_error_reported),
	        cmocka_unit_test(test_long_line_and_garbage),
	        cmocka_unit_test(test_local_only),
	        cmocka_unit_test(test_keys_documented),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
