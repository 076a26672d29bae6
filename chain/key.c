#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "chain/hex.h"
#include "chain/key.h"

struct st_chain_key_t {
    uint8_t seckey[CHAIN_SECP_KEY_LEN];
    chain_addr_t addr;
    size_t map_size; /* the whole mapping, a multiple of the page size */
};

/* read(2) returns short counts on some files; a key file needs very few reads */
#define CHAIN__KEY_READ_TRIES 16

/*
 * Maps a page for a key, locked and kept out of core dumps. Its own mapping, not malloc
 * memory: madvise and mlock work on whole pages, and a page shared with other allocations
 * would make their memory undumpable too, or leave the key dumpable when they moved.
 */
static int chain__key_alloc(chain_key_t **out)
{
    long page = sysconf(_SC_PAGESIZE);
    CHAIN_ASSERT(page > 0 && (size_t)page >= sizeof(chain_key_t));
    size_t size = (size_t)page;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return CHAIN_ERR_NOMEM;
    /* lock and mark before the key is written, so that it is never swappable nor dumpable */
    if (mlock(p, size) != 0 || madvise(p, size, MADV_DONTDUMP) != 0) {
        int saved = errno;
        munlock(p, size);
        munmap(p, size);
        errno = saved;
        return CHAIN_ERR_NOMEM;
    }
    chain_key_t *key = p;
    key->map_size = size;
    *out = key;
    return CHAIN_OK;
}

void chain_key_free(chain_key_t *key)
{
    if (key == NULL)
        return;
    size_t size = key->map_size;
    CHAIN_ASSERT(size >= sizeof(*key));
    explicit_bzero(key, size);
    munlock(key, size);
    munmap(key, size);
}

int chain_key_from_hex(chain_key_t **key, const char *s, size_t len)
{
    CHAIN_ASSERT(key != NULL);
    CHAIN_ASSERT(s != NULL || len == 0);
    *key = NULL;
    chain_key_t *k;
    int ret = chain__key_alloc(&k);
    if (ret != CHAIN_OK)
        return ret;
    /* decoded straight into the locked page: no copy of the key on the stack */
    ret = chain_hex_decode_exact(k->seckey, sizeof(k->seckey), s, len, CHAIN_HEX_0X_OPTIONAL);
    if (ret == CHAIN_OK && !secp256k1_ec_seckey_verify(chain_secp_context(), k->seckey))
        ret = CHAIN_ERR_KEY;
    if (ret == CHAIN_OK)
        ret = chain_secp_seckey_address(&k->addr, k->seckey);
    if (ret != CHAIN_OK) {
        chain_key_free(k);
        return ret;
    }
    *key = k;
    return CHAIN_OK;
}

/* writes a message to `err` (if any) and returns `code`: keeps error paths one line long */
__attribute__((format(printf, 4, 5))) static int
chain__key_fail(int code, char *err, size_t err_size, const char *fmt, ...)
{
    if (err != NULL && err_size != 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
    }
    return code;
}

/*
 * Checks the open file `fd` (not the path: what is checked is what is read, whatever a rename
 * or symlink swap did in between) and reads all of it into `buf`.
 */
static int chain__key_read_fd(int fd, const char *path, uint8_t *buf, size_t *len, char *err,
                              size_t err_size)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return chain__key_fail(CHAIN_ERR_IO, err, err_size, "key file %s: %s", path,
                               strerror(errno));
    if (!S_ISREG(st.st_mode))
        return chain__key_fail(CHAIN_ERR_IO, err, err_size, "key file %s: not a regular file",
                               path);
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
        return chain__key_fail(CHAIN_ERR_PERMISSION, err, err_size,
                               "key file %s: mode %04o lets group or others access it; "
                               "chmod 600 it",
                               path, (unsigned)(st.st_mode & 07777));
    size_t got = 0;
    for (int i = 0; i != CHAIN__KEY_READ_TRIES; ++i) {
        ssize_t n = read(fd, buf + got, CHAIN_KEY_FILE_MAX + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return chain__key_fail(CHAIN_ERR_IO, err, err_size, "key file %s: %s", path,
                                   strerror(errno));
        got += (size_t)n;
        if (n == 0 || got > CHAIN_KEY_FILE_MAX)
            break;
    }
    if (got > CHAIN_KEY_FILE_MAX)
        return chain__key_fail(CHAIN_ERR_LENGTH, err, err_size, "key file %s: longer than %d bytes",
                               path, CHAIN_KEY_FILE_MAX);
    *len = got;
    return CHAIN_OK;
}

static bool chain__key_is_space(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int chain_key_load_file(chain_key_t **key, const char *path, char *err, size_t err_size)
{
    CHAIN_ASSERT(key != NULL && path != NULL);
    *key = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int saved = errno;
        chain__key_fail(CHAIN_ERR_IO, err, err_size, "key file %s: %s", path, strerror(saved));
        errno = saved;
        return CHAIN_ERR_IO;
    }
    uint8_t buf[CHAIN_KEY_FILE_MAX + 1];
    size_t len = 0;
    int ret = chain__key_read_fd(fd, path, buf, &len, err, err_size);
    int saved = errno;
    close(fd);
    if (ret == CHAIN_OK) {
        size_t start = 0;
        while (start < len && chain__key_is_space(buf[start]))
            ++start;
        while (len > start && chain__key_is_space(buf[len - 1]))
            --len;
        ret = chain_key_from_hex(key, (const char *)buf + start, len - start);
        saved = errno;
        if (ret == CHAIN_ERR_NOMEM)
            chain__key_fail(ret, err, err_size,
                            "key file %s: cannot lock a page for the key (%s); "
                            "check RLIMIT_MEMLOCK",
                            path, strerror(saved));
        else if (ret != CHAIN_OK)
            chain__key_fail(ret, err, err_size, "key file %s: not a private key (%s)", path,
                            chain_err_str(ret));
    }
    explicit_bzero(buf, sizeof(buf));
    errno = saved;
    return ret;
}

const chain_addr_t *chain_key_address(const chain_key_t *key)
{
    CHAIN_ASSERT(key != NULL);
    return &key->addr;
}

void chain_key_sign(const chain_key_t *key, const uint8_t hash[CHAIN_SECP_KEY_LEN],
                    chain_sig_t *sig)
{
    CHAIN_ASSERT(key != NULL);
    /* the key was verified at load, so signing cannot fail short of memory corruption */
    int ret = chain_secp_sign(sig, hash, key->seckey);
    CHAIN_ASSERT(ret == CHAIN_OK);
}
