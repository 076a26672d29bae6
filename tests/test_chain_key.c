#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "chain/key.h"
#include "test_chain_fixtures.h"

/* anvil's dev account 0: a public, test-only key */
#define KEY_HEX "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
#define KEY_ADDR "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
/* the same without its "0x" */
#define KEY_DIGITS "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/test_chain_key.XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(chain_key, .init = make_tmpdir, .fini = remove_tmpdir);

/* writes `content` to a new file in the test's directory with `mode`; returns its path */
static const char *write_file(const char *name, const char *content, mode_t mode)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    size_t len = strlen(content);
    cr_assert_eq(write(fd, content, len), (ssize_t)len);
    cr_assert_eq(fchmod(fd, mode), 0); /* explicit, so that the umask plays no part */
    close(fd);
    return path;
}

static void assert_key_address(const chain_key_t *key, const char *addr)
{
    chain_addr_t want = fx_addr_str(addr);
    cr_assert(chain_addr_eq(chain_key_address(key), &want));
}

Test(chain_key, from_hex_with_and_without_prefix)
{
    chain_key_t *key;
    cr_assert_eq(chain_key_from_hex(&key, KEY_HEX, strlen(KEY_HEX)), CHAIN_OK);
    assert_key_address(key, KEY_ADDR);
    chain_key_free(key);
    cr_assert_eq(chain_key_from_hex(&key, KEY_DIGITS, strlen(KEY_DIGITS)), CHAIN_OK);
    assert_key_address(key, KEY_ADDR);
    chain_key_free(key);
    chain_key_free(NULL);
}

Test(chain_key, from_hex_rejects)
{
    static const struct {
        const char *s;
        int err;
    } cases[] = {
        {"", CHAIN_ERR_LENGTH},
        {"0x", CHAIN_ERR_LENGTH},
        {"0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff", CHAIN_ERR_LENGTH},
        {"0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff8000", CHAIN_ERR_LENGTH},
        {"0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff8", CHAIN_ERR_LENGTH},
        {"0xzc0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", CHAIN_ERR_SYNTAX},
        {" 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff8", CHAIN_ERR_SYNTAX},
        {"0Xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", CHAIN_ERR_SYNTAX},
        /* zero, the curve order n, and above it */
        {"0x0000000000000000000000000000000000000000000000000000000000000000", CHAIN_ERR_KEY},
        {"0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", CHAIN_ERR_KEY},
        {"0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", CHAIN_ERR_KEY},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        chain_key_t *key = (chain_key_t *)1;
        cr_assert_eq(chain_key_from_hex(&key, cases[i].s, strlen(cases[i].s)), cases[i].err,
                     "case %zu", i);
        cr_assert_null(key, "case %zu", i);
    }
}

Test(chain_key, n_minus_one_is_valid)
{
    const char *s = "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140";
    chain_key_t *key;
    cr_assert_eq(chain_key_from_hex(&key, s, strlen(s)), CHAIN_OK);
    chain_key_free(key);
}

Test(chain_key, signs_like_the_raw_key)
{
    chain_key_t *key;
    cr_assert_eq(chain_key_from_hex(&key, KEY_HEX, strlen(KEY_HEX)), CHAIN_OK);
    uint8_t raw[32], hash[32] = {0xab};
    fx_hex_exact(KEY_HEX, raw, sizeof(raw));
    chain_sig_t a, b;
    chain_key_sign(key, hash, &a);
    cr_assert_eq(chain_secp_sign(&b, hash, raw), CHAIN_OK);
    cr_assert(memcmp(&a, &b, sizeof(a)) == 0);
    chain_addr_t from;
    cr_assert_eq(chain_secp_recover(&from, hash, &a), CHAIN_OK);
    cr_assert(chain_addr_eq(&from, chain_key_address(key)));
    chain_key_free(key);
}

Test(chain_key, load_file)
{
    const char *contents[] = {KEY_HEX, KEY_HEX "\n", "  " KEY_HEX "\r\n\n", KEY_DIGITS};
    for (size_t i = 0; i != sizeof(contents) / sizeof(contents[0]); ++i) {
        char name[16];
        snprintf(name, sizeof(name), "key%zu", i);
        const char *path = write_file(name, contents[i], i % 2 == 0 ? 0600 : 0400);
        chain_key_t *key;
        char err[CHAIN_KEY_ERR_SIZE] = "";
        cr_assert_eq(chain_key_load_file(&key, path, err, sizeof(err)), CHAIN_OK, "%s", err);
        assert_key_address(key, KEY_ADDR);
        chain_key_free(key);
    }
}

Test(chain_key, load_file_refuses_open_permissions)
{
    const mode_t modes[] = {0644, 0640, 0604, 0620, 0602, 0610, 0601, 0660, 0666};
    for (size_t i = 0; i != sizeof(modes) / sizeof(modes[0]); ++i) {
        char name[16];
        snprintf(name, sizeof(name), "key%zu", i);
        const char *path = write_file(name, KEY_HEX "\n", modes[i]);
        chain_key_t *key = (chain_key_t *)1;
        char err[CHAIN_KEY_ERR_SIZE] = "";
        cr_assert_eq(chain_key_load_file(&key, path, err, sizeof(err)), CHAIN_ERR_PERMISSION,
                     "mode %o", modes[i]);
        cr_assert_null(key);
        char mode[8];
        snprintf(mode, sizeof(mode), "%04o", modes[i]);
        cr_assert_not_null(strstr(err, mode), "%s", err);
        cr_assert_not_null(strstr(err, path), "%s", err);
        cr_assert_null(strstr(err, KEY_DIGITS), "the message shows the key");
    }
}

Test(chain_key, load_file_errors)
{
    chain_key_t *key;
    char err[CHAIN_KEY_ERR_SIZE] = "";
    char path[128];
    snprintf(path, sizeof(path), "%s/missing", tmpdir);
    cr_assert_eq(chain_key_load_file(&key, path, err, sizeof(err)), CHAIN_ERR_IO);
    cr_assert_eq(errno, ENOENT);
    cr_assert_not_null(strstr(err, "missing"), "%s", err);

    cr_assert_eq(chain_key_load_file(&key, tmpdir, err, sizeof(err)), CHAIN_ERR_IO, "a directory");

    char big[CHAIN_KEY_FILE_MAX + 10];
    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, KEY_HEX, strlen(KEY_HEX));
    cr_assert_eq(chain_key_load_file(&key, write_file("big", big, 0600), err, sizeof(err)),
                 CHAIN_ERR_LENGTH);

    const char *secret = "0x1111111111111111111111111111111111111111111111111111111111111g11";
    cr_assert_eq(chain_key_load_file(&key, write_file("bad", secret, 0600), err, sizeof(err)),
                 CHAIN_ERR_SYNTAX);
    cr_assert_null(strstr(err, "1111"), "the message shows the file's content: %s", err);
    cr_assert_eq(
        chain_key_load_file(&key, write_file("two", KEY_HEX "\n" KEY_HEX, 0600), err, sizeof(err)),
        CHAIN_ERR_SYNTAX);
    cr_assert_eq(chain_key_load_file(&key, write_file("empty", "", 0600), NULL, 0),
                 CHAIN_ERR_LENGTH);
    const char *zero = "0x0000000000000000000000000000000000000000000000000000000000000000";
    cr_assert_eq(chain_key_load_file(&key, write_file("zero", zero, 0600), err, sizeof(err)),
                 CHAIN_ERR_KEY);
}

/* copies the VmFlags of the /proc/self/smaps entry of the mapping that starts at `p` */
static bool vm_flags_of(const void *p, char *flags, size_t size)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    cr_assert_not_null(f);
    char line[256];
    bool in = false, found = false;
    /* an entry is a "start-end perms ..." line, then "Name: value" lines, VmFlags last; no
     * field name parses as two hex numbers around a dash */
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        unsigned long start, end;
        if (sscanf(line, "%lx-%lx ", &start, &end) == 2)
            in = start == (unsigned long)p;
        else if (in && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(flags, size, "%s", line + 8);
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* the key's page is locked ("lo") and left out of core dumps ("dd") */
Test(chain_key, page_locked_and_not_dumped)
{
    chain_key_t *key;
    cr_assert_eq(chain_key_from_hex(&key, KEY_HEX, strlen(KEY_HEX)), CHAIN_OK);
    char flags[512];
    cr_assert(vm_flags_of(key, flags, sizeof(flags)), "no mapping starts at the key");
#if !defined(__SANITIZE_ADDRESS__)
    /* ASan intercepts mlock and makes it a no-op (its shadow memory cannot follow), so the
     * lock is only checked without it */
    cr_assert_not_null(strstr(flags, " lo"), "not locked: %s", flags);
#endif
    cr_assert_not_null(strstr(flags, " dd"), "dumpable: %s", flags);
    chain_key_free(key);
}
