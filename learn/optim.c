/*
 * optim.c: SGD with momentum and Adam (Kingma and Ba 2015), as PyTorch
 * applies them. Plain loops: these are O(n) and memory bound.
 */
#include "learn/optim.h"

#include "learn/learn.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void optim_params_default(struct optim_params *p, enum optim_type type)
{
	memset(p, 0, sizeof(*p));
	p->type = type;
	p->lr = type == OPTIM_ADAM ? 0.001f : 0.05f;
	p->momentum = 0.9f;
	p->beta2 = 0.999f;
	p->eps = 1e-8f;
	p->weight_decay = 0.0f;
}

int optim_params_check(const struct optim_params *p)
{
	if ((p->type != OPTIM_SGD && p->type != OPTIM_ADAM) || !isfinite(p->lr) ||
	    !(p->lr > 0.0f) || !(p->momentum >= 0.0f && p->momentum < 1.0f) ||
	    !(p->beta2 >= 0.0f && p->beta2 < 1.0f) || !(p->eps > 0.0f && p->eps < 1.0f) ||
	    !(p->weight_decay >= 0.0f && p->weight_decay <= 1.0f))
		return LEARN_EBOUNDS;
	return 0;
}

int optim_init(struct optim *o, const struct optim_params *p, size_t n)
{
	memset(o, 0, sizeof(*o));
	if (optim_params_check(p) != 0 || n == 0)
		return LEARN_EBOUNDS;
	o->p = *p;
	o->n = n;
	o->lr_scale = 1.0f;
	o->m = calloc(n, sizeof(float));
	if (p->type == OPTIM_ADAM)
		o->v = calloc(n, sizeof(float));
	if (o->m == NULL || (p->type == OPTIM_ADAM && o->v == NULL)) {
		optim_fini(o);
		return -ENOMEM;
	}
	return 0;
}

void optim_fini(struct optim *o)
{
	if (o == NULL)
		return;
	free(o->m);
	free(o->v);
	o->m = NULL;
	o->v = NULL;
}

void optim_reset(struct optim *o)
{
	o->t = 0;
	memset(o->m, 0, o->n * sizeof(float));
	if (o->v != NULL)
		memset(o->v, 0, o->n * sizeof(float));
}

float optim_lr(const struct optim *o)
{
	return o->p.lr * o->lr_scale;
}

void optim_step(struct optim *o, float *params, const float *grads)
{
	const struct optim_params *p = &o->p;
	const size_t n = o->n;
	const float wd = p->weight_decay;

	o->t++;
	if (p->type == OPTIM_SGD) {
		/*
		 * One pass over (p, v, g) with 16-byte vectors: three level-1 BLAS
		 * calls made three passes, and GCC 12 at -O2 leaves a plain loop
		 * scalar. PyTorch's first step v = g is the same, as v starts at 0.
		 */
		typedef float f32x4 __attribute__((vector_size(16)));
		const float mu = p->momentum, lr = optim_lr(o), c = 1.0f - mu;
		const f32x4 vmu = {mu, mu, mu, mu}, vlr = {lr, lr, lr, lr}, vwd = {wd, wd, wd, wd};
		const f32x4 vc = {c, c, c, c};
		float *v = o->m;
		size_t i = 0;
		if (o->quasi_global) {
			for (; i + 4 <= n; i += 4) {
				f32x4 pp, mm, gg, uu;
				memcpy(&pp, params + i, sizeof(pp));
				memcpy(&mm, v + i, sizeof(mm));
				memcpy(&gg, grads + i, sizeof(gg));
				uu = vmu * mm + gg + vwd * pp;
				pp -= vlr * uu;
				mm = vmu * mm + vc * uu;
				memcpy(v + i, &mm, sizeof(mm));
				memcpy(params + i, &pp, sizeof(pp));
			}
			for (; i < n; i++) {
				float u = mu * v[i] + grads[i] + wd * params[i];
				params[i] -= lr * u;
				v[i] = mu * v[i] + c * u;
			}
			return;
		}
		for (; i + 4 <= n; i += 4) {
			f32x4 pp, vv, gg;
			memcpy(&pp, params + i, sizeof(pp));
			memcpy(&vv, v + i, sizeof(vv));
			memcpy(&gg, grads + i, sizeof(gg));
			vv = vmu * vv + gg + vwd * pp;
			pp -= vlr * vv;
			memcpy(v + i, &vv, sizeof(vv));
			memcpy(params + i, &pp, sizeof(pp));
		}
		for (; i < n; i++) {
			v[i] = mu * v[i] + grads[i] + wd * params[i];
			params[i] -= lr * v[i];
		}
	} else {
		const float b1 = p->momentum, b2 = p->beta2, eps = p->eps;
		const double t = (double)o->t;
		const float bc1 = (float)(1.0 - pow(b1, t));
		const float bc2 = (float)(1.0 - pow(b2, t));
		const float step = optim_lr(o) / bc1, sqrt_bc2 = sqrtf(bc2);
		float *m = o->m, *v = o->v;
		for (size_t i = 0; i < n; i++) {
			float g = grads[i] + wd * params[i];
			m[i] = b1 * m[i] + (1.0f - b1) * g;
			v[i] = b2 * v[i] + (1.0f - b2) * g * g;
			params[i] -= step * m[i] / (sqrtf(v[i]) / sqrt_bc2 + eps);
		}
	}
}
