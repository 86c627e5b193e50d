/*
 * model.h: sotto's models, every parameter in ONE flat float array.
 *
 * A model is a fixed stack of layers whose weights and biases are views
 * into params (n_params floats, one allocation): a model, a delta, an
 * average or a masked vector is then one vector, and the codec walks the
 * public segment list (name, offset, length, shape) to quantise per layer.
 * Weight layout follows PyTorch, so vectors compare directly:
 *
 *   logreg  fc.weight (classes, D)  fc.bias (classes)          D = C*H*W
 *   mlp     fc1.weight (H1, D) fc1.bias (H1), ReLU, ...,
 *           fcN.weight (classes, Hk) fcN.bias (classes)
 *   cnn     conv1.weight (C1, C, 5, 5) conv1.bias (C1), ReLU, maxpool 2x2,
 *           conv2.weight (C2, C1, 5, 5) conv2.bias (C2), ReLU, maxpool 2x2,
 *           fc.weight (classes, C2*P*P) fc.bias (classes)
 *           (the CNN computes ReLU after each pooling: the same values and
 *           gradients, as max-pooling commutes with a monotonic function)
 *
 * Loss: softmax cross-entropy, mean over the batch. Initialisation is
 * PyTorch's default (uniform in +-1/sqrt(fan_in) for weights and biases)
 * drawn from rng.h with the given seed: every node that uses the same seed
 * gets bit-identical parameters.
 *
 * A model instance also owns the scratch (activations, im2col matrices) of
 * batches up to max_batch, so one instance is used by one thread at a time;
 * two instances share nothing. Not here: optimizers (optim.h), data order
 * and the training loop (train.h).
 */
#ifndef SOTTO_LEARN_MODEL_H
#define SOTTO_LEARN_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MODEL_MAX_HIDDEN 8
/*
 * Segments of a vector the codec averages: a model has at most 2 *
 * (MODEL_MAX_HIDDEN + 1); the moment vector of federated standardisation
 * (MODEL_STATS) up to this many, leaving the codec room for its weight and
 * checksum segments (CODEC_MAX_SEGMENTS).
 */
#define MODEL_MAX_SEGMENTS 254
#define MODEL_MAX_PARAMS   (1u << 27)   /* 512 MiB of floats */
#define MODEL_MAX_WIDTH    65536u       /* hidden widths, conv channels */
#define MODEL_MAX_SCRATCH  (1ull << 26) /* floats of activations etc. per instance */
#define MODEL_CNN_KERNEL   5
#define MODEL_CNN_C1       16 /* default conv channels */
#define MODEL_CNN_C2       32

enum model_type {
	MODEL_LOGREG = 0,
	MODEL_MLP = 1,
	MODEL_CNN = 2,
	/*
	 * Not a model: the per-feature moments that [Training] Standardize =
	 * federated averages before training (node/stats_phase.h). Only its
	 * n_params and segments are set; model_alloc refuses it.
	 */
	MODEL_STATS = 32,
	/*
	 * Not a model here either: the layout of a model an external process
	 * trains ([Model] Type = external, node/external.h), its segments being
	 * the declared tensors. model_alloc refuses it.
	 */
	MODEL_EXTERNAL = 33,
};

struct model_spec {
	enum model_type type;
	uint32_t channels, height, width;  /* input (C, H, W); dense data: (1, 1, D) */
	uint32_t classes;                  /* 2..256 */
	uint32_t n_hidden;                 /* mlp: hidden layers (1..MODEL_MAX_HIDDEN) */
	uint32_t hidden[MODEL_MAX_HIDDEN]; /* mlp: their widths */
	uint32_t conv[2];                  /* cnn: channels of conv1, conv2 */
	uint64_t layout;                   /* external: the declared layout's hash */
};

/* One weight or bias tensor inside params. */
struct model_segment {
	char name[24];     /* "fc1.weight", "conv2.bias", ... */
	size_t offset;     /* first float in params */
	size_t length;     /* floats */
	uint32_t ndim;     /* 1 (bias), 2 (dense weight) or 4 (conv weight) */
	uint32_t shape[4]; /* PyTorch order */
};

struct model_layer; /* private to model.c */

struct model {
	struct model_spec spec;
	size_t n_params;
	float *params; /* (n_params) the model */
	float *grads;  /* (n_params) filled by model_backward() */
	struct model_segment segs[MODEL_MAX_SEGMENTS];
	size_t n_segs;
	uint32_t max_batch;
	/* private: */
	struct model_layer *layers;
	size_t n_layers;
	float *x_cb;         /* cnn input in (C, B, H, W) */
	float *g1, *g2;      /* gradient ping-pong, largest activation */
	float *cols, *dcols; /* conv im2col scratch (a chunk of images) */
	float *dys;          /* dense models: every layer's output gradient, (B, out) each */
	double *row_sq;      /* dense models: per-row squared gradient norms (max_batch) */
	const float *in0;    /* input of the last forward pass */
	uint32_t last_b;     /* its batch size */
};

/*
 * Checks a spec (shapes, bounds, a CNN input large enough for two 5x5
 * convolutions and poolings). Returns 0 or LEARN_EBOUNDS.
 */
int model_spec_check(const struct model_spec *spec) __attribute__((warn_unused_result));
/* Parameters of a valid spec (0 if invalid). */
size_t model_spec_n_params(const struct model_spec *spec);
/* "logreg", "mlp", "cnn" */
const char *model_type_name(enum model_type t);

/*
 * Allocates a model for batches of at most max_batch rows, with zeroed
 * parameters. Returns 0, LEARN_EBOUNDS (bad spec, or the scratch for
 * max_batch would exceed MODEL_MAX_SCRATCH floats) or -ENOMEM;
 * model_free() it.
 */
int model_alloc(struct model **out, const struct model_spec *spec, uint32_t max_batch)
        __attribute__((warn_unused_result));
void model_free(struct model *m);

/* Sets params to the deterministic initialisation of seed. */
void model_init(struct model *m, uint64_t seed);

/*
 * Forward pass of x (B, C*H*W), B <= max_batch. Returns the logits (B,
 * classes), valid until the next call on m. x must stay valid until
 * model_backward() if that follows.
 */
const float *model_forward(struct model *m, const float *x, uint32_t B);

/*
 * After model_forward(): softmax cross-entropy against labels (B) and the
 * gradient of its batch mean into m->grads (overwritten). Returns the mean
 * loss; *correct (may be NULL) gets the number of right predictions.
 */
float model_backward(struct model *m, const uint8_t *labels, int *correct);

/*
 * DP-SGD's clipped sum (Abadi et al. 2016) in one batched pass, for models
 * of dense layers only (model_clips_per_row), once model_clip_scratch()
 * succeeded: after model_forward() of B
 * rows, m->grads gets the SUM over rows of each row's gradient of its own
 * loss, scaled down to norm at most clip (a row's gradient is left as it is
 * when its norm is at most clip). The norms come from the batched backward
 * pass (a dense layer's per-row weight gradient dy_i x_i^T has norm
 * |dy_i| |x_i|, its bias gradient dy_i), and the clipped sum is one more
 * pass over each layer with the rows of dy scaled (the gradient is linear
 * in each row's output gradient). norms (B, may be NULL) gets each row's
 * norm before clipping. Returns the summed loss; *correct as
 * model_backward().
 */
double model_backward_clipped(struct model *m, const uint8_t *labels, double clip, int *correct,
                              double *norms);
/* True if model_backward_clipped() works for m (logreg and mlp). */
bool model_clips_per_row(const struct model *m);
/*
 * Allocates the scratch model_backward_clipped() needs (every layer's output
 * gradient for max_batch rows: a third more than the activations), once.
 * 0, LEARN_EBOUNDS (not a dense model) or -ENOMEM.
 */
int model_clip_scratch(struct model *m) __attribute__((warn_unused_result));

/* Segment by name, or NULL. */
const struct model_segment *model_segment_find(const struct model *m, const char *name);

#endif
