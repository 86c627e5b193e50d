/*
 * file.c: write-temp + fsync + rename, and bounded reads.
 */
#include "util/file.h"

#include "util/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void (*file_test_hook)(const char *path);

static int write_full(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int fsync_dir_of(const char *path)
{
	char copy[PATH_MAX];
	int fd, rc = 0;

	if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
		return -ENAMETOOLONG;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

int file_write_atomic_parts(const char *path, const void *const *parts, const size_t *lens,
                            size_t n, mode_t mode)
{
	char tmp[PATH_MAX];
	int fd = -1, rc = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkstemp(tmp);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, mode) != 0) {
		rc = -errno;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		rc = write_full(fd, parts[i], lens[i]);
		if (rc != 0)
			goto out;
		if (file_test_hook != NULL && i == n / 2)
			file_test_hook(path);
	}
	if (fsync(fd) != 0) {
		rc = -errno;
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		rc = -errno;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = -errno;
		goto out;
	}
	return fsync_dir_of(path);
out:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
}

int file_write_atomic(const char *path, const void *buf, size_t len, mode_t mode)
{
	const void *parts[1] = {buf};
	size_t lens[1] = {len};

	return file_write_atomic_parts(path, parts, lens, 1, mode);
}

int file_open_regular(const char *path, int flags)
{
	struct stat st;
	int fd, fl;

	fd = open(path, flags | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return FILE_ENOTREG;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int file_read_all(const char *path, size_t max, uint8_t **out, size_t *len)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t have = 0;
	int fd, rc = 0;

	fd = file_open_regular(path, O_RDONLY);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		rc = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	/* Read up to the stat'ed size; a file that grows meanwhile is cut. */
	while (have < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + have, (size_t)st.st_size - have);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		have += (size_t)r;
	}
	buf[have] = '\0';
	*out = buf;
	*len = have;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

int file_mkdirs(const char *dir)
{
	char p[PATH_MAX];
	size_t n;

	if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p))
		return -ENAMETOOLONG;
	n = strlen(p);
	for (size_t i = 1; i <= n; i++) {
		if (p[i] == '/' || p[i] == '\0') {
			char c = p[i];
			p[i] = '\0';
			if (mkdir(p, 0700) != 0 && errno != EEXIST)
				return -errno;
			p[i] = c;
		}
	}
	return 0;
}

int file_cleanup_tmp(const char *dir)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int n = 0;

	d = opendir(dir);
	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		const char *t = strstr(e->d_name, ".tmp.");
		/* Exactly mkstemp's pattern: ".tmp." and six characters, at the end. */
		if (t == NULL || t == e->d_name || strlen(t) != 11)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
			continue;
		if (unlink(path) == 0)
			n++;
	}
	closedir(d);
	return n;
}
