/*
 * bench_learn.c: centralized training figures of learn/ on the bundled
 * 8,000 / 2,000 MNIST split, for each model: parameter count, seconds per
 * epoch, test accuracy per epoch, best accuracy. If PyTorch is installed
 * (Debian python3-torch), bench_torch.py trains the same model with the
 * same optimizer, batch size and threads on the same files, and the ratio
 * of epoch times is printed. Prints figures only; asserts nothing.
 *
 *   build-learn/bench/bench_learn [--epochs 20] [--models logreg,mlp,cnn]
 *       [--threads 1] [--batch 32] [--torch-epochs 3]
 *
 * Epoch time is the mean over epochs 2..N (the first warms caches and
 * thread pools, on both sides); evaluation is not timed. Both wall time
 * and the training thread's CPU time are printed: on a shared machine the
 * CPU time is the steadier figure.
 */
#include "learn/dataset.h"
#include "learn/learn.h"
#include "learn/model.h"
#include "learn/optim.h"
#include "learn/train.h"
#include "util/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bench_model {
	const char *name;
	enum model_type type;
	enum optim_type opt;
	float lr, momentum;
	float torch_epoch_s, torch_best, torch_cpu_s; /* filled by the PyTorch run */
};

/*
 * Hyperparameters: the MLP is docs/examples/local-mnist.conf; the others
 * were picked from a few runs of `sotto train` (logreg: SGD 0.01-0.1 and Adam
 * all land at 91.6-91.9%; CNN: SGD 0.02 98.7%, 0.05 98.0%, Adam 1e-3 98.6%).
 */
static struct bench_model models[] = {
        {"logreg", MODEL_LOGREG, OPTIM_ADAM, 0.001f, 0.9f, 0, 0, 0},
        {"mlp", MODEL_MLP, OPTIM_SGD, 0.05f, 0.9f, 0, 0, 0},
        {"cnn", MODEL_CNN, OPTIM_SGD, 0.02f, 0.9f, 0, 0, 0},
};

/* CPU seconds of this thread: less disturbed than wall time on a shared machine. */
static double thread_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static bool torch_available(void)
{
	return system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

static void run_torch(struct bench_model *bm, int epochs, uint32_t batch, int threads)
{
	char cmd[2048], line[512];
	FILE *p;

	snprintf(cmd, sizeof(cmd),
	         "/usr/bin/python3 %s/bench/bench_torch.py --model %s --epochs %d --batch %u "
	         "--threads %d --lr %g --momentum %g --optimizer %s --train "
	         "%s/data/mnist-train.sdat.gz --test %s/data/mnist-test.sdat.gz",
	         SOTTO_SOURCE_DIR, bm->name, epochs, batch, threads, (double)bm->lr,
	         (double)bm->momentum, bm->opt == OPTIM_ADAM ? "adam" : "sgd", SOTTO_SOURCE_DIR,
	         SOTTO_SOURCE_DIR);
	p = popen(cmd, "r");
	if (p == NULL)
		return;
	while (fgets(line, sizeof(line), p) != NULL) {
		float s, acc, cpu;
		char name[32];
		printf("  %s", line);
		if (sscanf(line, "torch %31s mean_epoch_s %f best_acc %f cpu_s %f", name, &s, &acc,
		           &cpu) == 4) {
			bm->torch_epoch_s = s;
			bm->torch_best = acc;
			bm->torch_cpu_s = cpu;
		}
	}
	(void)pclose(p);
}

int main(int argc, char **argv)
{
	const char *which = "logreg,mlp,cnn";
	int64_t epochs = 20, threads = 1, batch = 32, torch_epochs = 3;
	struct dataset *tr = NULL, *te = NULL;
	bool have_torch;
	int rc = 1;

	for (int i = 1; i + 1 < argc; i += 2) {
		int bad = 0;
		if (strcmp(argv[i], "--epochs") == 0)
			bad = util_parse_i64(&epochs, argv[i + 1], 1, 10000);
		else if (strcmp(argv[i], "--threads") == 0)
			bad = util_parse_i64(&threads, argv[i + 1], 1, 64);
		else if (strcmp(argv[i], "--batch") == 0)
			bad = util_parse_i64(&batch, argv[i + 1], 1, 4096);
		else if (strcmp(argv[i], "--torch-epochs") == 0)
			bad = util_parse_i64(&torch_epochs, argv[i + 1], 0, 10000);
		else if (strcmp(argv[i], "--models") == 0)
			which = argv[i + 1];
		else
			bad = -1;
		if (bad != 0) {
			fprintf(stderr,
			        "usage: bench_learn [--epochs N] [--models a,b] [--threads T] "
			        "[--batch B] [--torch-epochs E]\n");
			return 2;
		}
	}
	if (dataset_load(&tr, SOTTO_SOURCE_DIR "/data/mnist-train.sdat.gz") != 0 ||
	    dataset_load(&te, SOTTO_SOURCE_DIR "/data/mnist-test.sdat.gz") != 0) {
		fprintf(stderr, "bench_learn: cannot load the bundled data\n");
		goto out;
	}
	learn_set_threads((int)threads);
	have_torch = torch_epochs > 0 && torch_available();
	printf("bench_learn: MNIST %u train / %u test, batch %lld, %lld thread(s), %lld epochs\n",
	       tr->rows, te->rows, (long long)batch, (long long)threads, (long long)epochs);

	for (size_t k = 0; k < ARRAY_LEN(models); k++) {
		struct bench_model *bm = &models[k];
		struct model_spec s;
		struct optim_params op;
		struct train *t = NULL;
		double *times = NULL, best = 0.0, mean = 0.0, cpu = 0.0;
		int best_epoch = 0;
		if (strstr(which, bm->name) == NULL)
			continue;
		memset(&s, 0, sizeof(s));
		s.type = bm->type;
		s.channels = 1;
		s.height = 28;
		s.width = 28;
		s.classes = 10;
		s.n_hidden = 1;
		s.hidden[0] = 128;
		s.conv[0] = MODEL_CNN_C1;
		s.conv[1] = MODEL_CNN_C2;
		optim_params_default(&op, bm->opt);
		op.lr = bm->lr;
		op.momentum = bm->momentum;
		if (train_alloc(&t, &s, 42, &op, (uint32_t)batch, 1) != 0) {
			fprintf(stderr, "bench_learn: cannot create %s\n", bm->name);
			goto out;
		}
		times = calloc((size_t)epochs, sizeof(double));
		printf("\n== %s: %zu parameters, %s lr %g momentum %g\n", bm->name,
		       t->model->n_params, bm->opt == OPTIM_ADAM ? "adam" : "sgd", (double)bm->lr,
		       (double)bm->momentum);
		for (int64_t e = 0; e < epochs; e++) {
			struct eval_result ev;
			double t0 = util_now(), c0 = thread_cpu();
			if (train_epoch(t, tr, NULL) != 0)
				break;
			times[e] = util_now() - t0;
			if (e > 0 || epochs == 1)
				cpu += thread_cpu() - c0;
			if (model_evaluate(t->model, te, &ev, NULL) != 0)
				break;
			if (ev.accuracy > best) {
				best = ev.accuracy;
				best_epoch = (int)e + 1;
			}
			printf("sotto %s epoch %lld test acc %.2f%% loss %.4f %.3f s\n", bm->name,
			       (long long)e + 1, 100.0 * ev.accuracy, ev.loss, times[e]);
			fflush(stdout);
		}
		for (int64_t e = epochs > 1 ? 1 : 0; e < epochs; e++)
			mean += times[e];
		mean /= (double)(epochs > 1 ? epochs - 1 : 1);
		cpu /= (double)(epochs > 1 ? epochs - 1 : 1);
		qsort(times, (size_t)epochs, sizeof(double), cmp_double);
		printf("sotto %s: %zu params, epoch %.4f s mean (epochs 2..%lld), %.4f s median, "
		       "best test acc %.2f%% (epoch %d)\n",
		       bm->name, t->model->n_params, mean, (long long)epochs, times[epochs / 2],
		       100.0 * best, best_epoch);
		if (have_torch) {
			run_torch(bm, (int)torch_epochs, (uint32_t)batch, (int)threads);
			if (bm->torch_epoch_s > 0)
				printf("ratio %s: sotto/pytorch epoch time %.3f wall (%.4f s / "
				       "%.4f "
				       "s), %.3f cpu (%.4f s / %.4f s)\n",
				       bm->name, mean / bm->torch_epoch_s, mean,
				       (double)bm->torch_epoch_s, cpu / bm->torch_cpu_s, cpu,
				       (double)bm->torch_cpu_s);
		} else {
			printf("pytorch: not installed (apt-get install python3-torch), no "
			       "ratio\n");
		}
		fflush(stdout);
		free(times);
		train_free(t);
	}
	rc = 0;
out:
	dataset_free(tr);
	dataset_free(te);
	return rc;
}
