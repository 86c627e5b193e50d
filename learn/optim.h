/*
 * optim.h: optimizers over a flat parameter vector, with PyTorch's update
 * rules (torch.optim.SGD and Adam with L2 weight decay added to the
 * gradient), so a run compares step for step with a PyTorch script.
 *
 *   SGD:  g += wd*p;  v = mu*v + g;  p -= lr*v            (v = 0 at start)
 *   Adam: g += wd*p;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;
 *         p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 *
 * Quasi-global momentum (Lin et al., ICML 2021, QG-DSGDm), for SGD when
 * quasi_global is set: the buffer m is an average of the model's
 * displacement per unit of lr, gossip included, and the step uses it:
 *
 *        u = mu*m + g + wd*p;  p -= lr*u;  m = mu*m + (1-mu)*u
 *
 * and a gossip jump J (the average minus what this node contributed) adds
 * m -= (1-mu)*J/lr (train_merge). Without gossip u settles at g/(1-mu), as
 * plain momentum does.
 *
 * The state (m, v, t) is part of a checkpoint; lr_scale and quasi_global
 * are not (the trainer sets them from its schedule before every step). An
 * instance belongs to one model; not thread-safe, no globals.
 */
#ifndef SOTTO_LEARN_OPTIM_H
#define SOTTO_LEARN_OPTIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum optim_type {
	OPTIM_SGD = 0,
	OPTIM_ADAM = 1,
};

struct optim_params {
	enum optim_type type;
	float lr;
	float momentum; /* SGD momentum; Adam beta1 */
	float beta2;    /* Adam */
	float eps;      /* Adam */
	float weight_decay;
};

struct optim {
	struct optim_params p;
	size_t n;
	uint64_t t;        /* steps taken */
	float *m;          /* (n) SGD velocity / Adam first moment */
	float *v;          /* (n) Adam second moment; NULL for SGD */
	float lr_scale;    /* the step uses p.lr * lr_scale (1 unless a schedule sets it) */
	bool quasi_global; /* SGD: m is the quasi-global momentum buffer (above) */
};

/* Fills p with sotto's defaults for type (lr 0.05 SGD, 0.001 Adam). */
void optim_params_default(struct optim_params *p, enum optim_type type);
/* Checks ranges (finite, lr > 0, 0 <= momentum, beta2 < 1, ...). 0 or LEARN_EBOUNDS. */
int optim_params_check(const struct optim_params *p) __attribute__((warn_unused_result));

/* Initialises o (caller's storage) for n parameters, zero state. */
int optim_init(struct optim *o, const struct optim_params *p, size_t n)
        __attribute__((warn_unused_result));
void optim_fini(struct optim *o);
/* Zeroes the state (m, v, t), e.g. after a model was replaced by an average. */
void optim_reset(struct optim *o);
/* The step size of the next step: p.lr * lr_scale. */
float optim_lr(const struct optim *o);
/* One step: params -= update(grads), both of o->n floats. */
void optim_step(struct optim *o, float *params, const float *grads);

#endif
