/*
 * Shared by every chain/ module: the error codes that decoders return and an assertion that
 * stays on in release builds.
 *
 * Decoders in chain/ read bytes that come from the network (JSON-RPC answers, API requests), so
 * they never trust a length and never crash on bad input: they return one of the negative codes
 * below. Assertions are only for a caller's programming errors (NULL output, impossible sizes),
 * and they abort even with NDEBUG, because continuing with a broken invariant near money is
 * worse than stopping.
 */
#ifndef CHAIN_COMMON_H
#define CHAIN_COMMON_H

/** Result codes of chain/ functions: CHAIN_OK, or a negative reason. */
typedef enum en_chain_err_t {
    CHAIN_OK = 0,
    CHAIN_ERR_SHORT_BUFFER = -1, /* the caller's output buffer is too small */
    CHAIN_ERR_SYNTAX = -2,       /* a character that is not allowed there */
    CHAIN_ERR_LENGTH = -3,       /* wrong length: odd hex, empty input, not 20 bytes, ... */
    CHAIN_ERR_OVERFLOW = -4,     /* the value does not fit the destination type */
    CHAIN_ERR_PRECISION = -5,    /* more fractional digits than the token has decimals */
    CHAIN_ERR_CHECKSUM = -6,     /* mixed-case address whose EIP-55 checksum is wrong */
    CHAIN_ERR_TRUNCATED = -7,    /* RLP, ABI: an item claims more bytes than there are */
    CHAIN_ERR_NONCANONICAL = -8, /* RLP, ABI: a valid but not minimal (or dirty) encoding */
    CHAIN_ERR_DEPTH = -9,        /* RLP: lists nested deeper than CHAIN_RLP_MAX_DEPTH */
    CHAIN_ERR_TYPE = -10,        /* RLP: a list where a string was expected, or back */
    CHAIN_ERR_TRAILING = -11,    /* bytes left over after the one expected item */
    CHAIN_ERR_STATE = -12,       /* RLP writer: list_end without list_begin, or unclosed */
    CHAIN_ERR_SIGNATURE = -13,   /* malformed signature: v, r or s out of range, high s */
    CHAIN_ERR_SIGNER = -14,      /* a well-formed signature, but not by the expected address */
    CHAIN_ERR_KEY = -15,         /* not a valid secp256k1 private key */
    CHAIN_ERR_PERMISSION = -16,  /* a key file that group or others may access */
    CHAIN_ERR_IO = -17,          /* a file could not be opened or read (see errno) */
    CHAIN_ERR_MISMATCH = -18,    /* SIWE: domain or chain id other than the expected one */
    CHAIN_ERR_EXPIRED = -19,     /* SIWE: past its Expiration Time */
    CHAIN_ERR_NOT_YET = -20,     /* SIWE: before Not Before, or Issued At in the future */
    CHAIN_ERR_UNSUPPORTED = -21, /* valid, but not a form this code handles (a tx type, ...) */
    CHAIN_ERR_NOMEM = -22,       /* out of memory, or mlock refused */
} chain_err_t;

/** A short English name for an error code, for logs; never NULL. */
const char *chain_err_str(int err);

/**
 * Aborts with the expression, file and line when `cond` is false, whatever NDEBUG says.
 */
#define CHAIN_ASSERT(cond)                                                                         \
    do {                                                                                           \
        if (__builtin_expect(!(cond), 0))                                                          \
            chain__assert_fail(#cond, __FILE__, __LINE__);                                         \
    } while (0)

/** Used by CHAIN_ASSERT; prints to stderr and aborts. */
__attribute__((noreturn, cold)) void chain__assert_fail(const char *expr, const char *file,
                                                        int line);

#endif
