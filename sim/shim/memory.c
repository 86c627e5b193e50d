/*
 * memory.c: the simulator's stand-in for libsodium's guarded allocator.
 *
 * sodium_malloc puts every secret between guard pages: an mmap and two
 * mprotect calls per buffer, which made up a fifth of a large simulation's
 * time and protects nothing inside one simulated process. The simulator
 * binary defines these three symbols itself, so the node code it links
 * (secagg/, crypto/) gets plain heap memory that is still wiped on free.
 * The daemon never links this file.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>

#define HDR 16 /* keeps the caller's pointer 16-byte aligned */

void *sodium_malloc(const size_t size)
{
	uint8_t *p = malloc(HDR + (size ? size : 1));

	if (p == NULL)
		return NULL;
	*(size_t *)(void *)p = size;
	return p + HDR;
}

void *sodium_allocarray(size_t count, size_t size)
{
	if (size != 0 && count > SIZE_MAX / size)
		return NULL;
	return sodium_malloc(count * size);
}

void sodium_free(void *ptr)
{
	uint8_t *p;

	if (ptr == NULL)
		return;
	p = (uint8_t *)ptr - HDR;
	sodium_memzero(ptr, *(size_t *)(void *)p);
	free(p);
}
