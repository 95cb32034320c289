// SPDX-License-Identifier: GPL-2.0
/*
 * gmig module presence: the module is loaded, says its version in debugfs,
 * its debugfs root exists, and its policy parameters take their values
 * only. Skips when gmig.ko is not loaded.
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

static int write_param(const char *name, const char *val)
{
	char path[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/sys/module/gmig/parameters/%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -errno : 0;
}

static const char *read_param(const char *name, char *buf, size_t len)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/module/gmig/parameters/%s", name);
	if (read_file(path, buf, len) < 0)
		return "";
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

/*
 * A value is checked and spelt once, by the planner: "iterative\n" reads
 * back as "iterative"; a value of another parameter is refused with
 * -EINVAL and leaves the parameter as it was.
 */
TEST_F(gmig, policy_parameters_take_their_values_only)
{
	char buf[32], dirty[32];

	read_param("dirty", dirty, sizeof(dirty));
	ASSERT_EQ(0, write_param("precopy", "iterative\n"));
	ASSERT_STREQ("iterative", read_param("precopy", buf, sizeof(buf)));
	ASSERT_EQ(-EINVAL, write_param("precopy", "writeset"));
	ASSERT_STREQ("iterative", read_param("precopy", buf, sizeof(buf)));
	ASSERT_EQ(0, write_param("precopy", "oneshot"));
	ASSERT_STREQ("oneshot", read_param("precopy", buf, sizeof(buf)));

	ASSERT_EQ(-EINVAL, write_param("dirty", "oneshot"));
	ASSERT_STREQ(dirty, read_param("dirty", buf, sizeof(buf)));
	ASSERT_EQ(-EINVAL, write_param("rehash", "hash"));
	ASSERT_EQ(0, write_param("rehash", "all"));
	ASSERT_STREQ("all", read_param("rehash", buf, sizeof(buf)));
	ASSERT_EQ(0, write_param("rehash", "writeset"));
	ASSERT_STREQ("inplace", read_param("hashing", buf, sizeof(buf)));
	ASSERT_EQ(-EINVAL, write_param("hashing", "all"));
	ASSERT_EQ(0, write_param("hashing", "copy\n"));
	ASSERT_STREQ("copy", read_param("hashing", buf, sizeof(buf)));
	ASSERT_EQ(0, write_param("hashing", "inplace"));
}

TEST_HARNESS_MAIN
