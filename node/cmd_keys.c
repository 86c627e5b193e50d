/*
 * cmd_keys.c: `sotto keygen` and `sotto pubkey`, after wg genkey/pubkey.
 *
 * Keys travel through files and pipes only, never argv: a command line is
 * visible to every user through /proc.
 */
#include "crypto/identity.h"
#include "node/cli.h"
#include "util/err.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

int keys_write_new(const char *path, const struct identity *id)
{
	char line[IDENTITY_B64_BYTES + 1];
	int fd, rc = 0;

	/* O_EXCL: never overwrite an identity; 0600 from the start. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	identity_encode_private(line, id);
	line[IDENTITY_B64_BYTES - 1] = '\n';
	line[IDENTITY_B64_BYTES] = '\0';
	/* The umask may have removed bits but never adds them; be sure. */
	if (fchmod(fd, 0600) != 0 || write_all(fd, line, IDENTITY_B64_BYTES) != 0 || fsync(fd) != 0)
		rc = -errno;
	sodium_memzero(line, sizeof(line));
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc != 0)
		unlink(path);
	return rc;
}

int cmd_keygen(int argc, char **argv)
{
	char line[IDENTITY_B64_BYTES + 1];
	struct identity *id = NULL;
	struct stat st;
	int rc = 1, r;

	if (argc > 2 || (argc == 2 && argv[1][0] == '-' && argv[1][1] != '\0')) {
		fprintf(stderr, "usage: sotto keygen [FILE]\n");
		return 2;
	}
	id = identity_generate();
	if (id == NULL) {
		fprintf(stderr, "sotto keygen: cannot initialise libsodium\n");
		return 1;
	}
	if (argc == 2) {
		r = keys_write_new(argv[1], id);
		if (r == -EEXIST)
			fprintf(stderr, "sotto keygen: %s exists; refusing to overwrite it\n",
			        argv[1]);
		else if (r != 0)
			fprintf(stderr, "sotto keygen: cannot write %s: %s\n", argv[1], err_str(r));
		identity_free(id);
		return r == 0 ? 0 : 1;
	}
	if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0)
		fprintf(stderr, "Warning: writing to a file that group or others can read.\n"
		                "Consider setting the umask to 077 and trying again.\n");
	identity_encode_private(line, id);
	line[IDENTITY_B64_BYTES - 1] = '\n';
	line[IDENTITY_B64_BYTES] = '\0';
	if (write_all(STDOUT_FILENO, line, IDENTITY_B64_BYTES) != 0)
		fprintf(stderr, "sotto keygen: write: %s\n", strerror(errno));
	else
		rc = 0;
	sodium_memzero(line, sizeof(line));
	identity_free(id);
	return rc;
}

int cmd_pubkey(int argc, char **argv)
{
	char buf[256];
	char pub[IDENTITY_B64_BYTES];
	struct identity *id = NULL;
	size_t have = 0;
	int rc;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "usage: sotto pubkey < private.key\n");
		return 2;
	}
	while (have < sizeof(buf)) {
		ssize_t r = read(STDIN_FILENO, buf + have, sizeof(buf) - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "sotto pubkey: read: %s\n", strerror(errno));
			sodium_memzero(buf, sizeof(buf));
			return 1;
		}
		if (r == 0)
			break;
		have += (size_t)r;
	}
	rc = have < sizeof(buf) ? identity_decode_private(&id, buf, have) : IDENTITY_EFORMAT;
	sodium_memzero(buf, sizeof(buf));
	if (rc != 0) {
		fprintf(stderr, "sotto pubkey: standard input is not a private key "
		                "(one base64 line from `sotto keygen`)\n");
		return 1;
	}
	identity_public_encode(pub, id->sign_pk);
	identity_free(id);
	printf("%s\n", pub);
	return fflush(stdout) == 0 ? 0 : 1;
}
