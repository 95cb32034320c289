// SPDX-License-Identifier: GPL-2.0
/*
 * gmig module presence: the module is loaded, says its version in debugfs,
 * and its debugfs root exists. Skips when gmig.ko is not loaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"

#define GMIG_DEBUGFS "/sys/kernel/debug/gmig"

static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return n;
}

FIXTURE(gmig) {};

FIXTURE_SETUP(gmig)
{
	struct stat st;

	if (stat("/sys/module/gmig", &st))
		SKIP(return, "gmig.ko is not loaded");
}

FIXTURE_TEARDOWN(gmig) {}

TEST_F(gmig, debugfs_root_exists)
{
	struct stat st;

	ASSERT_EQ(0, stat(GMIG_DEBUGFS, &st));
	ASSERT_TRUE(S_ISDIR(st.st_mode));
}

TEST_F(gmig, version_file)
{
	char buf[64];
	unsigned int major, minor, patch;

	ASSERT_LT(0, read_file(GMIG_DEBUGFS "/version", buf, sizeof(buf)));
	ASSERT_EQ(3, sscanf(buf, "gmig %u.%u.%u", &major, &minor, &patch));
	ASSERT_EQ('\n', buf[strlen(buf) - 1]);
}

TEST_F(gmig, version_file_is_read_only)
{
	struct stat st;

	ASSERT_EQ(0, stat(GMIG_DEBUGFS "/version", &st));
	ASSERT_TRUE(S_ISREG(st.st_mode));
	ASSERT_EQ(0, st.st_mode & 0222);
}

TEST_HARNESS_MAIN
