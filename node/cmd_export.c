/*
 * cmd_export.c: the model a site's node holds, out of sotto.
 *
 *   sotto export -c FILE -o OUT.npz   named tensors (learn/npz.h) and a JSON
 *                                     sidecar OUT.json: the model, the input
 *                                     scaling, the progress it came from
 *   sotto predict -c FILE IN OUT      labels and class probabilities of IN's
 *                                     rows, as a CSV
 *
 * Both read the node's checkpoint (DataDir/checkpoint: written after every
 * applied round and epoch, and when the node stops; replaced atomically, so
 * reading it while the node runs is safe) and the site's Dataset (for how
 * its features were scaled). Neither talks to the node nor changes a file
 * of the node's. Outputs are mode 0600: a model and its predictions are
 * derived from patient records.
 */
#include "config/config.h"
#include "learn/checkpoint.h"
#include "learn/dataset.h"
#include "learn/featstats.h"
#include "learn/import.h"
#include "learn/learn.h"
#include "learn/model.h"
#include "learn/npz.h"
#include "learn/train.h"
#include "node/cli.h"
#include "node/external.h"
#include "node/gossip.h"
#include "node/standardize.h"
#include "util/err.h"
#include "util/file.h"
#include "util/sbuf.h"
#include "util/util.h"
#include "version.h" /* generated: SOTTO_VERSION */

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXPORT_USAGE  "usage: sotto export -c FILE -o OUT.npz\n"
#define PREDICT_USAGE "usage: sotto predict -c FILE IN OUT [--header] [--label COL]\n"

/* What both commands load: the config, the node's model, the site's Dataset. */
struct site {
	struct config cfg;
	bool cfg_loaded;
	char ckpt[CONFIG_PATH_MAX + 32];
	struct train *t;
	uint8_t *extra;
	size_t extra_len;
	struct dataset *ds;
};

static void site_fini(struct site *s)
{
	train_free(s->t);
	free(s->extra);
	dataset_free(s->ds);
	if (s->cfg_loaded)
		config_fini(&s->cfg);
}

/* 0, or the exit status (the reason printed). */
static int site_load(struct site *s, const char *cmd, const char *path)
{
	int rc;

	memset(s, 0, sizeof(*s));
	rc = config_load(&s->cfg, path);
	s->cfg_loaded = true;
	if (rc != 0) {
		config_errors_print(&s->cfg, stderr);
		return 2;
	}
	snprintf(s->ckpt, sizeof(s->ckpt), "%s/checkpoint", s->cfg.node.data_dir);
	rc = checkpoint_load(s->ckpt, &s->t, &s->extra, &s->extra_len);
	if (rc == -ENOENT) {
		fprintf(stderr,
		        "sotto %s: %s does not exist yet: the node writes it after its first "
		        "epoch or round and when it stops\n",
		        cmd, s->ckpt);
		return 1;
	}
	if (rc != 0) {
		fprintf(stderr, "sotto %s: %s: %s\n", cmd, s->ckpt, err_str(rc));
		return 1;
	}
	rc = dataset_load(&s->ds, s->cfg.training.dataset);
	if (rc != 0) {
		fprintf(stderr, "sotto %s: Dataset %s: %s (needed for how features are scaled)\n",
		        cmd, s->cfg.training.dataset, err_str(rc));
		return 1;
	}
	{
		char why[CONFIG_PATH_MAX * 2 + 256] = "";
		if (standardize_datasets(&s->cfg, s->ds, NULL, NULL, why, sizeof(why)) != 0) {
			fprintf(stderr, "sotto %s: %s\n", cmd, why);
			return 1;
		}
	}
	if (train_check_data(s->t, s->ds) != 0) {
		fprintf(stderr, "sotto %s: %s does not fit Dataset %s (features or classes)\n", cmd,
		        s->ckpt, s->cfg.training.dataset);
		return 1;
	}
	return 0;
}

/* --- JSON sidecar ------------------------------------------------------------ */

/* A JSON string of a path (escapes quotes, backslashes and control bytes). */
static void put_string(struct sbuf *t, const char *s)
{
	sb_printf(t, "\"");
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			sb_printf(t, "\\%c", c);
		else if (c < 0x20 ||
		         c >= 0x7f) /* keeps the file ASCII, valid JSON whatever the path */
			sb_printf(t, "\\u%04x", c);
		else
			sb_printf(t, "%c", c);
	}
	sb_printf(t, "\"");
}

static const char *input_scaling(const struct dataset *ds)
{
	if (ds->mean != NULL)
		return "standardised: x = (raw - input.mean) / input.std";
	if (ds->elem == DATASET_U8)
		return "bytes divided by 255: x = raw / 255";
	return "none";
}

static void sidecar(struct sbuf *t, const struct site *s, const char *npz)
{
	const struct model *m = s->t->model;
	const struct model_spec *sp = &m->spec;
	uint64_t rounds = 0;
	double epochs = 0;
	bool progress =
	        gossip_extra_progress(s->extra, s->extra_len, m->n_params, &rounds, &epochs) == 0;

	sb_printf(t,
	          "{\n  \"format\": \"sotto-export\",\n  \"version\": 1,\n  \"sotto\": \"%s\",\n",
	          SOTTO_VERSION);
	sb_printf(t, "  \"tensors_file\": ");
	put_string(t, npz);
	sb_printf(
	        t,
	        ",\n  \"model\": {\"type\": \"%s\", \"input_shape\": [%u, %u, %u], \"classes\": %u",
	        model_type_name(sp->type), sp->channels, sp->height, sp->width, sp->classes);
	if (sp->type == MODEL_MLP) {
		sb_printf(t, ", \"hidden\": [");
		for (uint32_t i = 0; i < sp->n_hidden; i++)
			sb_printf(t, "%s%u", i > 0 ? ", " : "", sp->hidden[i]);
		sb_printf(t, "]");
	}
	if (sp->type == MODEL_CNN)
		sb_printf(t, ", \"conv\": [%u, %u], \"kernel\": %u", sp->conv[0], sp->conv[1],
		          MODEL_CNN_KERNEL);
	sb_printf(t, ", \"parameters\": %zu},\n", m->n_params);
	sb_printf(
	        t, "  \"forward\": \"%s\",\n",
	        sp->type == MODEL_LOGREG ? "logits = x @ fc.weight.T + fc.bias"
	        : sp->type == MODEL_MLP
	                ? "h = relu(x @ fc1.weight.T + fc1.bias), ...; logits = h @ fcN.weight.T + "
	                  "fcN.bias (fc1..fcN in order, ReLU after all but the last)"
	                : "conv1 (5x5, valid), max-pool 2x2, ReLU, conv2 (5x5, valid), max-pool "
	                  "2x2, "
	                  "ReLU, flatten (C, H, W), logits = fc (PyTorch layout)");
	sb_printf(t, "  \"output\": \"softmax(logits) are the class probabilities\",\n");
	sb_printf(t, "  \"tensors\": {");
	for (size_t i = 0; i < m->n_segs; i++) {
		const struct model_segment *g = &m->segs[i];
		sb_printf(t, "%s\"%s\": [", i > 0 ? ", " : "", g->name);
		for (uint32_t d = 0; d < g->ndim; d++)
			sb_printf(t, "%s%u", d > 0 ? ", " : "", g->shape[d]);
		sb_printf(t, "]");
	}
	if (s->ds->mean != NULL)
		sb_printf(t, ", \"input.mean\": [%u], \"input.std\": [%u]", s->ds->dims,
		          s->ds->dims);
	sb_printf(t, "},\n  \"input\": \"%s\",\n", input_scaling(s->ds));
	sb_printf(t, "  \"trained\": {\"epoch\": %llu, \"steps\": %llu",
	          (unsigned long long)s->t->epoch, (unsigned long long)s->t->steps);
	if (progress)
		sb_printf(t, ", \"epochs_trained\": %.4f, \"rounds_completed\": %llu}", epochs,
		          (unsigned long long)rounds);
	else
		sb_printf(t, ", \"epochs_trained\": null, \"rounds_completed\": null}");
	sb_printf(t, ",\n  \"checkpoint\": ");
	put_string(t, s->ckpt);
	sb_printf(t, "\n}\n");
}

/*
 * [Model] Type = external: the last averaged model from DataDir/external.state
 * (node/external.h), tensors named and shaped as the trainer declared them.
 * The trainer's own parameters, and what it trained since, are the
 * trainer's to save. 0, or the exit status (the reason printed).
 */
static int export_external(const struct config *cfg, const char *cfg_path, const char *out,
                           const char *json_path)
{
	char path[CONFIG_PATH_MAX + 32], hex[17];
	struct tmsg_hello *h = malloc(sizeof(*h));
	struct npz_entry *e = calloc(TMSG_MAX_TENSORS, sizeof(*e));
	struct sbuf t = {0};
	const uint8_t *extra, *last;
	uint8_t *file = NULL;
	float *x = NULL;
	size_t flen, elen, off = 0;
	uint64_t rounds = 0;
	double epochs = 0;
	int rc, status = 1;

	(void)cfg_path;
	snprintf(path, sizeof(path), "%s/" EXT_STATE_FILE, cfg->node.data_dir);
	if (h == NULL || e == NULL) {
		fprintf(stderr, "sotto export: out of memory\n");
		goto out;
	}
	rc = file_read_all(path, 12 + TMSG_MAX_HELLO + (64u << 10) + 4ull * TMSG_MAX_PARAMS, &file,
	                   &flen);
	if (rc == -ENOENT) {
		fprintf(stderr,
		        "sotto export: %s does not exist yet: the node writes it after its first "
		        "round and when it stops\n",
		        path);
		goto out;
	}
	if (rc != 0 || ext_statefile_decode(file, flen, h, &extra, &elen) != 0 ||
	    gossip_extra_last(extra, elen, (size_t)h->n_params, &last) != 0 ||
	    gossip_extra_progress(extra, elen, (size_t)h->n_params, &rounds, &epochs) != 0) {
		fprintf(stderr, "sotto export: %s: %s\n", path,
		        rc != 0 ? err_str(rc) : "not a state file of this sotto");
		goto out;
	}
	if (last == NULL) {
		fprintf(stderr,
		        "sotto export: %s holds no averaged model yet (no round completed)\n",
		        path);
		goto out;
	}
	x = malloc(h->n_params * sizeof(float));
	if (x == NULL) {
		fprintf(stderr, "sotto export: out of memory\n");
		goto out;
	}
	memcpy(x, last, h->n_params * sizeof(float)); /* aligned for the writer */
	for (size_t i = 0; i < h->n_tensors; i++) {
		const struct tmsg_tensor *g = &h->tensors[i];
		e[i].name = g->name;
		e[i].ndim = g->ndim;
		memcpy(e[i].shape, g->shape, sizeof(uint32_t) * g->ndim);
		e[i].data = x + off;
		off += (size_t)g->numel;
	}
	rc = npz_write(out, e, h->n_tensors, 0600);
	if (rc != 0) {
		fprintf(stderr,
		        "sotto export: %s: %s (tensor names must be [A-Za-z0-9_.-], at most %d "
		        "characters)\n",
		        out, err_str(rc), NPZ_MAX_NAME);
		goto out;
	}
	if (!sb_init(&t)) {
		fprintf(stderr, "sotto export: out of memory\n");
		(void)unlink(out);
		goto out;
	}
	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)tmsg_layout_hash(h));
	sb_printf(&t,
	          "{\n  \"format\": \"sotto-export\",\n  \"version\": 1,\n  \"sotto\": \"%s\",\n",
	          SOTTO_VERSION);
	sb_printf(&t, "  \"tensors_file\": ");
	put_string(&t, out);
	sb_printf(&t,
	          ",\n  \"model\": {\"type\": \"external\", \"layout\": \"%s\", \"parameters\": "
	          "%llu},\n",
	          hex, (unsigned long long)h->n_params);
	sb_printf(&t, "  \"forward\": \"the trainer's own module: load these tensors into it by "
	              "name (sotto.load_export(...).load_into(module))\",\n");
	sb_printf(&t, "  \"tensors\": {");
	for (size_t i = 0; i < h->n_tensors; i++) {
		sb_printf(&t, "%s\"%s\": [", i > 0 ? ", " : "", h->tensors[i].name);
		for (uint32_t d = 0; d < h->tensors[i].ndim; d++)
			sb_printf(&t, "%s%u", d > 0 ? ", " : "", h->tensors[i].shape[d]);
		sb_printf(&t, "]");
	}
	sb_printf(&t, "},\n  \"trained\": {\"epochs_trained\": %.4f, \"rounds_completed\": %llu}",
	          epochs, (unsigned long long)rounds);
	sb_printf(&t, ",\n  \"checkpoint\": ");
	put_string(&t, path);
	sb_printf(&t, "\n}\n");
	if (sb_finish(&t) == NULL || (rc = file_write_atomic(json_path, t.p, t.len, 0600)) != 0) {
		fprintf(stderr, "sotto export: %s: cannot write it\n", json_path);
		(void)unlink(out); /* no archive without its sidecar */
		goto out;
	}
	printf("exported the external model's last average, %llu parameters in %zu tensors (%llu "
	       "rounds), from %s to %s and %s\n",
	       (unsigned long long)h->n_params, h->n_tensors, (unsigned long long)rounds, path, out,
	       json_path);
	status = 0;
out:
	free(t.p);
	free(x);
	free(file);
	free(e);
	free(h);
	return status;
}

int cmd_export(int argc, char **argv)
{
	const char *path = NULL, *out = NULL;
	struct npz_entry e[MODEL_MAX_SEGMENTS + 2];
	struct sbuf json = {0};
	char json_path[4096];
	struct site s;
	size_t n = 0, olen;
	int status, rc;

	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc)
			path = argv[++i];
		else if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--out") == 0) &&
		         i + 1 < argc)
			out = argv[++i];
		else {
			fprintf(stderr, "sotto export: unknown argument '%s'\n" EXPORT_USAGE,
			        argv[i]);
			return 2;
		}
	}
	if (path == NULL || out == NULL) {
		fputs(EXPORT_USAGE
		      "  Writes the node's model (DataDir/checkpoint) as named float32 "
		      "tensors\n  in a NumPy .npz, and OUT.json beside it: the model, how "
		      "inputs are\n  scaled, and the epoch and rounds it came from.\n",
		      stderr);
		return 2;
	}
	olen = strlen(out);
	if (olen < 5 || strcasecmp(out + olen - 4, ".npz") != 0 || olen + 2 > sizeof(json_path)) {
		fprintf(stderr, "sotto export: %s: the output must end in .npz\n", out);
		return 2;
	}
	snprintf(json_path, sizeof(json_path), "%.*s.json", (int)(olen - 4), out);
	{
		struct config cfg;
		if (config_load(&cfg, path) == 0 && cfg.model.type == CONFIG_MODEL_EXTERNAL) {
			status = export_external(&cfg, path, out, json_path);
			config_fini(&cfg);
			return status;
		}
		config_fini(&cfg);
	}
	status = site_load(&s, "export", path);
	if (status != 0)
		goto done;
	status = 1;
	for (size_t i = 0; i < s.t->model->n_segs; i++) {
		const struct model_segment *g = &s.t->model->segs[i];
		e[n].name = g->name;
		e[n].ndim = g->ndim;
		memset(e[n].shape, 0, sizeof(e[n].shape));
		memcpy(e[n].shape, g->shape, sizeof(g->shape));
		e[n++].data = s.t->model->params + g->offset;
	}
	if (s.ds->mean != NULL) {
		e[n] = (struct npz_entry){"input.mean", 1, {s.ds->dims}, s.ds->mean};
		n++;
		e[n] = (struct npz_entry){"input.std", 1, {s.ds->dims}, s.ds->std};
		n++;
	}
	rc = npz_write(out, e, n, 0600);
	if (rc != 0) {
		fprintf(stderr, "sotto export: %s: %s\n", out, err_str(rc));
		goto done;
	}
	if (!sb_init(&json)) {
		fprintf(stderr, "sotto export: out of memory\n");
		(void)unlink(out);
		goto done;
	}
	sidecar(&json, &s, out);
	if (sb_finish(&json) == NULL) {
		fprintf(stderr, "sotto export: out of memory\n");
		(void)unlink(out);
		goto done;
	}
	rc = file_write_atomic(json_path, json.p, json.len, 0600);
	if (rc != 0) {
		fprintf(stderr, "sotto export: %s: %s\n", json_path, err_str(rc));
		(void)unlink(out); /* no archive without its sidecar */
		goto done;
	}
	printf("exported %s, %zu parameters (epoch %llu, %llu steps) from %s to %s and %s\n",
	       model_type_name(s.t->model->spec.type), s.t->model->n_params,
	       (unsigned long long)s.t->epoch, (unsigned long long)s.t->steps, s.ckpt, out,
	       json_path);
	if (s.ds->mean != NULL && (s.cfg.privacy.epsilon > 0 || s.cfg.privacy.noise_multiplier > 0))
		printf("note: input.mean and input.std are this site's own feature statistics, "
		       "without differential privacy: share the archive without them if they must "
		       "stay private (docs/privacy.md)\n");
	status = 0;
done:
	free(json.p);
	site_fini(&s);
	return status;
}

/* --- predict ------------------------------------------------------------------- */

/* True if a and b name one existing file. */
static bool same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

static bool ends_with_csv(const char *p)
{
	size_t n = strlen(p);
	return n >= 4 && strcasecmp(p + n - 4, ".csv") == 0;
}

/* IN as rows scaled like the site's Dataset; 0 or the exit status. */
static int predict_input(struct dataset **in, const struct site *s, const char *path, bool header,
                         int label)
{
	char why[256] = "";
	int rc;

	if (ends_with_csv(path)) {
		if (s->ds->mean == NULL) {
			fprintf(stderr,
			        "sotto predict: %s is not standardised (%s): give IN as a sotto "
			        "dataset file scaled the same way, not a CSV\n",
			        s->cfg.training.dataset,
			        s->ds->elem == DATASET_U8 ? "bytes" : "floats");
			return 1;
		}
		rc = import_csv(in, path, label, header, s->ds, s->ds->classes, why, sizeof(why));
		if (rc != 0) {
			fprintf(stderr, "sotto predict: %s\n", why[0] != '\0' ? why : err_str(rc));
			return 1;
		}
		return 0;
	}
	if (header || label != IMPORT_CSV_NO_LABEL) {
		fprintf(stderr, "sotto predict: --header and --label are for a CSV (IN ending in "
		                ".csv)\n");
		return 2;
	}
	rc = dataset_load(in, path);
	if (rc != 0) {
		fprintf(stderr, "sotto predict: %s: %s\n", path, err_str(rc));
		return 1;
	}
	if ((*in)->rows == 0) {
		fprintf(stderr, "sotto predict: %s has no rows\n", path);
		return 1;
	}
	if (s->cfg.training.standardize != CONFIG_STD_NONE && (*in)->mean == NULL &&
	    (*in)->dims == s->ds->dims) {
		/* Raw rows, as the Dataset was: scaled as the node scaled it. */
		struct featstats fs = {.dims = s->ds->dims, .mean = s->ds->mean, .std = s->ds->std};
		rc = featstats_apply(*in, &fs);
		if (rc != 0) {
			fprintf(stderr, "sotto predict: %s: %s\n", path, err_str(rc));
			return 1;
		}
	}
	if ((*in)->dims != s->ds->dims || (*in)->classes > s->ds->classes ||
	    (*in)->elem != s->ds->elem || (*in)->channels != s->ds->channels ||
	    (*in)->height != s->ds->height || (*in)->width != s->ds->width ||
	    !dataset_same_scaling(*in, s->ds)) {
		fprintf(stderr,
		        "sotto predict: %s is shaped or scaled unlike Dataset %s (import it with "
		        "`sotto data import-csv IN.csv OUT --stats %s`)\n",
		        path, s->cfg.training.dataset, s->cfg.training.dataset);
		return 1;
	}
	return 0;
}

int cmd_predict(int argc, char **argv)
{
	const char *path = NULL, *in_path = NULL, *out_path = NULL;
	bool header = false, labelled;
	int label = IMPORT_CSV_NO_LABEL;
	struct dataset *in = NULL;
	struct sbuf csv = {0};
	struct site s;
	uint32_t *idx = NULL;
	uint64_t right = 0;
	int status, rc;

	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--header") == 0)
			header = true;
		else if (strcmp(argv[i], "--label") == 0 && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);
			if (*end != '\0' || end == argv[i] || v < -1 || v > 65535) {
				fprintf(stderr,
				        "sotto predict: --label %s: a column number (0-based) "
				        "or -1 for the last\n",
				        argv[i]);
				return 2;
			}
			label = (int)v;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "sotto predict: unknown option '%s'\n" PREDICT_USAGE,
			        argv[i]);
			return 2;
		} else if (in_path == NULL)
			in_path = argv[i];
		else if (out_path == NULL)
			out_path = argv[i];
		else {
			fprintf(stderr, "sotto predict: one IN and one OUT\n" PREDICT_USAGE);
			return 2;
		}
	}
	if (path == NULL || in_path == NULL || out_path == NULL) {
		fputs(PREDICT_USAGE
		      "  Labels IN's rows with the node's model (DataDir/checkpoint). IN: a CSV "
		      "whose\n"
		      "  columns are the features (--label COL: and that column the true label), "
		      "or a\n"
		      "  sotto dataset file; CSV rows are standardised as the site's Dataset was.\n"
		      "  OUT: a CSV with a header line and, per row, the label and the "
		      "probability\n"
		      "  of each class. With true labels, the accuracy goes to stderr.\n",
		      stderr);
		return 2;
	}
	{
		struct config cfg;
		bool ext = config_load(&cfg, path) == 0 && cfg.model.type == CONFIG_MODEL_EXTERNAL;
		config_fini(&cfg);
		if (ext) {
			fprintf(stderr,
			        "sotto predict: %s: an external model runs in its trainer's "
			        "framework: `sotto export` it and load it into your module "
			        "(sotto.load_export(...).load_into(module))\n",
			        path);
			return 2;
		}
	}
	status = site_load(&s, "predict", path);
	if (status != 0)
		goto done;
	if (same_file(out_path, in_path) || same_file(out_path, s.cfg.training.dataset) ||
	    same_file(out_path, s.ckpt) || same_file(out_path, path)) {
		fprintf(stderr, "sotto predict: OUT %s is one of its inputs\n", out_path);
		status = 2;
		goto done;
	}
	status = predict_input(&in, &s, in_path, header, label);
	if (status != 0)
		goto done;
	status = 1;
	labelled = !ends_with_csv(in_path) || label != IMPORT_CSV_NO_LABEL;
	idx = malloc(s.t->batch * sizeof(*idx));
	if (idx == NULL || !sb_init(&csv)) {
		fprintf(stderr, "sotto predict: out of memory\n");
		goto done;
	}
	sb_printf(&csv, "label");
	for (uint32_t c = 0; c < s.ds->classes; c++)
		sb_printf(&csv, ",p%u", c);
	sb_printf(&csv, "\n");
	for (uint32_t r0 = 0; r0 < in->rows; r0 += s.t->batch) {
		uint32_t b = MIN(s.t->batch, in->rows - r0);
		const float *logits;
		for (uint32_t i = 0; i < b; i++)
			idx[i] = r0 + i;
		dataset_batch(in, idx, b, s.t->x, s.t->y);
		logits = model_forward(s.t->model, s.t->x, b);
		for (uint32_t i = 0; i < b; i++) {
			const float *z = logits + (size_t)i * s.ds->classes;
			uint32_t arg = 0;
			double sum = 0;
			for (uint32_t c = 1; c < s.ds->classes; c++)
				if (z[c] > z[arg])
					arg = c;
			for (uint32_t c = 0; c < s.ds->classes; c++)
				sum += exp((double)z[c] - z[arg]);
			sb_printf(&csv, "%u", arg);
			for (uint32_t c = 0; c < s.ds->classes; c++)
				sb_printf(&csv, ",%.6g", exp((double)z[c] - z[arg]) / sum);
			sb_printf(&csv, "\n");
			right += arg == s.t->y[i];
		}
	}
	if (sb_finish(&csv) == NULL) {
		fprintf(stderr, "sotto predict: out of memory\n");
		goto done;
	}
	rc = file_write_atomic(out_path, csv.p, csv.len, 0600);
	if (rc != 0) {
		fprintf(stderr, "sotto predict: %s: %s\n", out_path, err_str(rc));
		goto done;
	}
	fprintf(stderr, "predicted %u rows with %s (epoch %llu) into %s", in->rows,
	        model_type_name(s.t->model->spec.type), (unsigned long long)s.t->epoch, out_path);
	if (labelled)
		fprintf(stderr, "; accuracy %.2f%% against IN's labels",
		        100.0 * (double)right / (double)in->rows);
	fprintf(stderr, "\n");
	status = 0;
done:
	free(idx);
	free(csv.p);
	dataset_free(in);
	site_fini(&s);
	return status;
}
