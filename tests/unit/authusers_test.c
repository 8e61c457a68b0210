/* Unit tests for src/policy/authusers.c. */
#include <crypt.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t.h"
#include "policy/authusers.h"

static char err[1024];

static struct authusers *P(const char *text)
{
	err[0] = '\0';
	return authusers_parse("users.txt", text, strlen(text), err, sizeof err);
}

/* Hash pass with a fresh salt of the method prefix ("$y$", "$6$", ...) into out. */
static const char *mkhash(const char *prefix, const char *pass, char *out, size_t outlen)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = calloc(1, sizeof *cd);
	const char *h = NULL;

	out[0] = '\0';
	if (cd && crypt_gensalt_rn(prefix, 0, NULL, 0, salt, sizeof salt) != NULL)
		h = crypt_rn(pass, salt, cd, (int)sizeof *cd);
	if (h && h[0] != '*')
		snprintf(out, outlen, "%s", h);
	free(cd);
	return out;
}

/* 1 when text fails with exactly want. */
static int fails_with(const char *text, const char *want)
{
	struct authusers *u = P(text);

	if (u != NULL) {
		fprintf(stderr, "  unexpectedly parsed: %s\n", text);
		authusers_free(u);
		return 0;
	}
	if (strcmp(err, want) != 0) {
		fprintf(stderr, "  got  \"%s\"\n  want \"%s\"\n", err, want);
		return 0;
	}
	return 1;
}

/* 1 when text fails with an error that starts with prefix and contains part. */
static int fails_like(const char *text, const char *prefix, const char *part)
{
	struct authusers *u = P(text);

	if (u != NULL) {
		fprintf(stderr, "  unexpectedly parsed: %s\n", text);
		authusers_free(u);
		return 0;
	}
	if (strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, part) == NULL) {
		fprintf(stderr, "  got  \"%s\"\n  want \"%s...%s...\"\n", err, prefix, part);
		return 0;
	}
	return 1;
}

TEST(yescrypt_user_verifies_with_the_right_password_only)
{
	char h[CRYPT_OUTPUT_SIZE], text[1024];
	struct authusers *u;

	mkhash("$y$", "correct horse", h, sizeof h);
	CHECK(strncmp(h, "$y$", 3) == 0);
	snprintf(text, sizeof text, "# users\n\nalice:%s\n", h);
	u = P(text);
	CHECK(u != NULL);
	if (u == NULL) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK(authusers_count(u) == 1);
	CHECK(authusers_verify(u, "alice", "correct horse") == 1);
	CHECK(authusers_verify(u, "alice", "correct horse ") == 0);
	CHECK(authusers_verify(u, "alice", "Correct horse") == 0);
	CHECK(authusers_verify(u, "alice", "") == 0);
	CHECK(authusers_verify(u, "alice", NULL) == 0);
	authusers_free(u);
}

TEST(sha512_user_verifies_with_the_right_password_only)
{
	char h[CRYPT_OUTPUT_SIZE], text[1024];
	struct authusers *u;

	mkhash("$6$", "s3cret", h, sizeof h);
	CHECK(strncmp(h, "$6$", 3) == 0);
	snprintf(text, sizeof text, "bob:%s\r\n", h);
	u = P(text);
	CHECK(u != NULL);
	if (u == NULL) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK(authusers_verify(u, "bob", "s3cret") == 1);
	CHECK(authusers_verify(u, "bob", "s3cre") == 0);
	authusers_free(u);
}

TEST(every_accepted_method_parses_and_verifies)
{
	static const char *const prefixes[] = { "$y$", "$gy$", "$7$", "$2b$", "$6$", "$5$" };
	char h[CRYPT_OUTPUT_SIZE], text[1024];

	for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
		struct authusers *u;

		mkhash(prefixes[i], "pw", h, sizeof h);
		if (h[0] == '\0') {
			fprintf(stderr, "  this libcrypt cannot make %s hashes\n", prefixes[i]);
			CHECK(0);
			continue;
		}
		snprintf(text, sizeof text, "carol:%s\n", h);
		u = P(text);
		CHECK(u != NULL);
		if (u == NULL) {
			fprintf(stderr, "  %s: %s\n", prefixes[i], err);
			continue;
		}
		CHECK(authusers_verify(u, "carol", "pw") == 1);
		CHECK(authusers_verify(u, "carol", "pW") == 0);
		authusers_free(u);
	}
}

TEST(unknown_user_does_not_verify)
{
	char h[CRYPT_OUTPUT_SIZE], text[1024];
	struct authusers *u;

	mkhash("$y$", "pw", h, sizeof h);
	snprintf(text, sizeof text, "alice:%s\n", h);
	u = P(text);
	CHECK(u != NULL);
	CHECK(authusers_verify(u, "mallory", "pw") == 0);
	CHECK(authusers_verify(u, "", "pw") == 0);
	CHECK(authusers_verify(u, NULL, "pw") == 0);
	CHECK(authusers_hash(u, "mallory") == NULL);
	authusers_free(u);
}

TEST(user_names_match_case_sensitively)
{
	char h[CRYPT_OUTPUT_SIZE], text[1024];
	struct authusers *u;

	mkhash("$y$", "pw", h, sizeof h);
	snprintf(text, sizeof text, "Alice:%s\n", h);
	u = P(text);
	CHECK(u != NULL);
	CHECK(authusers_verify(u, "Alice", "pw") == 1);
	CHECK(authusers_verify(u, "alice", "pw") == 0);
	CHECK(authusers_verify(u, "ALICE", "pw") == 0);
	authusers_free(u);
}

TEST(empty_and_comment_only_files_have_no_users)
{
	struct authusers *u = P("");

	CHECK(u != NULL);
	CHECK(authusers_count(u) == 0);
	CHECK(authusers_verify(u, "alice", "pw") == 0);
	authusers_free(u);
	u = P("# nobody yet\n\n   \t\n  # indented comment\n");
	CHECK(u != NULL);
	CHECK(authusers_count(u) == 0);
	authusers_free(u);
	CHECK(authusers_verify(NULL, "alice", "pw") == 0);
}

TEST(blanks_and_trailing_comments_around_an_entry_are_ignored)
{
	char h[CRYPT_OUTPUT_SIZE], text[1024];
	struct authusers *u;

	mkhash("$6$", "pw", h, sizeof h);
	snprintf(text, sizeof text, "  \tdave:%s   # the admin\n", h);
	u = P(text);
	CHECK(u != NULL);
	CHECK_STR(authusers_hash(u, "dave"), h);
	authusers_free(u);
}

TEST(line_without_colon_names_the_line)
{
	CHECK(fails_with("# header\n\nalice\n", "users.txt:3: missing ':' (want user:crypt-hash)"));
}

TEST(empty_user_is_refused)
{
	CHECK(fails_with(":$6$abc$def\n", "users.txt:1: empty user name before ':'"));
}

TEST(user_with_whitespace_or_control_chars_is_refused)
{
	char h[CRYPT_OUTPUT_SIZE], text[1024];

	mkhash("$6$", "pw", h, sizeof h);
	snprintf(text, sizeof text, "al ice:%s\n", h);
	CHECK(fails_with(text,
	    "users.txt:1: user name \"al ice\" contains whitespace or a control character"));
	snprintf(text, sizeof text, "alice :%s\n", h);
	CHECK(fails_like(text, "users.txt:1: user name \"alice \"", "whitespace"));
	snprintf(text, sizeof text, "al\x01ice:%s\n", h);
	CHECK(fails_like(text, "users.txt:1: user name \"al\\x01ice\"", "control"));
	snprintf(text, sizeof text, "al\x7fice:%s\n", h);
	CHECK(fails_like(text, "users.txt:1: ", "control"));
}

TEST(user_longer_than_255_bytes_is_refused)
{
	char h[CRYPT_OUTPUT_SIZE], text[1024], name[300];
	struct authusers *u;

	mkhash("$6$", "pw", h, sizeof h);
	memset(name, 'x', 255);
	name[255] = '\0';
	snprintf(text, sizeof text, "%s:%s\n", name, h);
	u = P(text);
	CHECK(u != NULL);
	CHECK(authusers_hash(u, name) != NULL);
	authusers_free(u);
	snprintf(text, sizeof text, "%sx:%s\n", name, h);
	CHECK(fails_like(text, "users.txt:1: user name", "longer than 255 bytes"));
}

TEST(duplicate_user_error_names_both_lines)
{
	char h[CRYPT_OUTPUT_SIZE], text[2048];

	mkhash("$6$", "pw", h, sizeof h);
	snprintf(text, sizeof text, "alice:%s\nbob:%s\n# x\nalice:%s\n", h, h, h);
	CHECK(fails_with(text, "users.txt:4: user \"alice\" is listed twice (lines 1 and 4)"));
}

TEST(legacy_des_hash_is_refused_with_a_clear_message)
{
	CHECK(fails_like("alice:abJnggxhB/yWI\n", "users.txt:1: user \"alice\": ",
	    "traditional DES crypt hash refused"));
	CHECK(fails_like("alice:abJnggxhB/yWI\n", "users.txt:1: ", "use yescrypt ($y$)"));
	CHECK(fails_like("alice:_J9..mLK.J0xBQZ8O3L2\n", "users.txt:1: ", "BSDi extended DES"));
}

TEST(md5_and_other_weak_hashes_are_refused_by_name)
{
	CHECK(fails_like("alice:$1$QQ5CgDXi$89mDFhnd3ItfkpEal9K4l.\n", "users.txt:1: ",
	    "MD5-crypt ($1$) hash refused"));
	CHECK(fails_like("alice:$2a$05$AY8KbAUwyYeoV2rI5xoks.7AZK1g/LjrI0BnqJ1itLuU0UXnQE17G\n",
	    "users.txt:1: ", "bcrypt variant $2a$"));
	CHECK(fails_like("alice:$3$$878d8014606cda29677a44efa1353fc7\n", "users.txt:1: ",
	    "NT-hash"));
	CHECK(fails_like("alice:$9$whatever$xyz\n", "users.txt:1: ", "unknown crypt method"));
	CHECK(fails_like("alice:plaintext password\n", "users.txt:1: ", "not a crypt hash"));
	CHECK(fails_like("alice:\n", "users.txt:1: user \"alice\": ", "empty hash"));
	CHECK(fails_like("alice:!\n", "users.txt:1: ", "not a crypt hash"));
}

TEST(truncated_or_mangled_hash_is_refused)
{
	char h[CRYPT_OUTPUT_SIZE], text[1024];
	size_t n;

	mkhash("$y$", "pw", h, sizeof h);
	n = strlen(h);
	snprintf(text, sizeof text, "alice:%.*s\n", (int)(n - 1), h);
	CHECK(fails_like(text, "users.txt:1: user \"alice\": ", "malformed yescrypt hash"));
	snprintf(text, sizeof text, "alice:%sA\n", h);
	CHECK(fails_like(text, "users.txt:1: ", "malformed yescrypt hash"));
	CHECK(fails_like("alice:$y$\n", "users.txt:1: ", "malformed yescrypt hash"));
	snprintf(text, sizeof text, "alice:%s:extra\n", h);
	CHECK(fails_like(text, "users.txt:1: ", "malformed yescrypt hash"));
	mkhash("$6$", "pw", h, sizeof h);
	snprintf(text, sizeof text, "alice:%.20s\n", h);
	CHECK(fails_like(text, "users.txt:1: ", "malformed SHA-512-crypt hash"));
}

TEST(nul_byte_names_the_line)
{
	struct authusers *u = authusers_parse("users.txt", "# a\nal\0ice:x\n", 13, err, sizeof err);

	CHECK(u == NULL);
	CHECK_STR(err, "users.txt:2: NUL byte in line");
}

TEST(ten_thousand_users_are_all_found)
{
	char h[CRYPT_OUTPUT_SIZE], name[32];
	size_t hl, cap, len = 0;
	char *text;
	struct authusers *u;
	int missing = 0;

	mkhash("$6$", "pw", h, sizeof h);
	hl = strlen(h);
	cap = 10000 * (hl + 32);
	text = malloc(cap);
	CHECK(text != NULL);
	if (text == NULL)
		return;
	for (int i = 0; i < 10000; i++)
		len += (size_t)snprintf(text + len, cap - len, "user%d:%s\n", i, h);
	err[0] = '\0';
	u = authusers_parse("big", text, len, err, sizeof err);
	CHECK(u != NULL);
	CHECK(authusers_count(u) == 10000);
	for (int i = 0; i < 10000; i++) {
		snprintf(name, sizeof name, "user%d", i);
		if (authusers_hash(u, name) == NULL)
			missing++;
	}
	CHECK(missing == 0);
	CHECK(authusers_hash(u, "user10000") == NULL);
	CHECK(authusers_verify(u, "user9999", "pw") == 1);
	authusers_free(u);
	free(text);
}

TEST(load_reads_a_file_and_names_it_in_errors)
{
	char path[] = "/tmp/authusers_test.XXXXXX", h[CRYPT_OUTPUT_SIZE], want[512];
	struct authusers *u;
	int fd = mkstemp(path);
	FILE *fp;

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	mkhash("$y$", "pw", h, sizeof h);
	fp = fdopen(fd, "w");
	fprintf(fp, "alice:%s\n", h);
	fclose(fp);
	u = authusers_load(path, err, sizeof err);
	CHECK(u != NULL);
	CHECK(authusers_verify(u, "alice", "pw") == 1);
	authusers_free(u);

	fp = fopen(path, "w");
	fprintf(fp, "alice:%s\nbroken\n", h);
	fclose(fp);
	CHECK(authusers_load(path, err, sizeof err) == NULL);
	snprintf(want, sizeof want, "%s:2: missing ':' (want user:crypt-hash)", path);
	CHECK_STR(err, want);
	unlink(path);

	CHECK(authusers_load(path, err, sizeof err) == NULL);
	snprintf(want, sizeof want, "%s: cannot read: No such file or directory", path);
	CHECK_STR(err, want);
}

TEST(file_readable_by_others_is_reported)
{
	char path[] = "/tmp/authusers_test.XXXXXX", why[512], want[512];
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	close(fd);
	CHECK(chmod(path, 0600) == 0);
	CHECK(authusers_file_mode_ok(path, why, sizeof why) == 1);
	CHECK(chmod(path, 0640) == 0);
	CHECK(authusers_file_mode_ok(path, why, sizeof why) == 1);
	CHECK(chmod(path, 0644) == 0);
	CHECK(authusers_file_mode_ok(path, why, sizeof why) == 0);
	snprintf(want, sizeof want, "%s is readable by others (mode 0644)", path);
	CHECK_STR(why, want);
	CHECK(chmod(path, 0602) == 0);
	CHECK(authusers_file_mode_ok(path, why, sizeof why) == 0);
	CHECK(strstr(why, "writable by others") != NULL);
	unlink(path);
	CHECK(authusers_file_mode_ok(path, why, sizeof why) == -1);
	CHECK(strstr(why, "cannot stat") != NULL);
}

int main(void)
{
	RUN(yescrypt_user_verifies_with_the_right_password_only);
	RUN(sha512_user_verifies_with_the_right_password_only);
	RUN(every_accepted_method_parses_and_verifies);
	RUN(unknown_user_does_not_verify);
	RUN(user_names_match_case_sensitively);
	RUN(empty_and_comment_only_files_have_no_users);
	RUN(blanks_and_trailing_comments_around_an_entry_are_ignored);
	RUN(line_without_colon_names_the_line);
	RUN(empty_user_is_refused);
	RUN(user_with_whitespace_or_control_chars_is_refused);
	RUN(user_longer_than_255_bytes_is_refused);
	RUN(duplicate_user_error_names_both_lines);
	RUN(legacy_des_hash_is_refused_with_a_clear_message);
	RUN(md5_and_other_weak_hashes_are_refused_by_name);
	RUN(truncated_or_mangled_hash_is_refused);
	RUN(nul_byte_names_the_line);
	RUN(ten_thousand_users_are_all_found);
	RUN(load_reads_a_file_and_names_it_in_errors);
	RUN(file_readable_by_others_is_reported);
	T_EXIT();
}
